"""The local AWS's indexes (cognito_patches): a large pool answers as a small one does, with the same answers.

Look-ups by case-folded username and ListUsers / ListUsersInGroup pages are served from indexes kept while the
pool's users are unchanged; these tests change the pool between pages and between look-ups, over real HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from cognito_migration.local.cognito_patches import IndexedUsers, VersionedSet
from step_support import unique


def make_pool(cognito: Any, case_sensitive: bool = False) -> str:
    return cognito.create_user_pool(PoolName=unique("pool"), UsernameConfiguration={"CaseSensitive": case_sensitive})[
        "UserPool"
    ]["Id"]


def add_users(cognito: Any, pool_id: str, names: list[str], **attributes: str) -> None:
    for name in names:
        cognito.admin_create_user(
            UserPoolId=pool_id,
            Username=name,
            MessageAction="SUPPRESS",
            UserAttributes=[{"Name": k, "Value": v} for k, v in attributes.items()],
        )


def read_all(
    cognito: Any, operation: str, pages: list[int] | None = None, token: str | None = None, **kwargs: Any
) -> list[str]:
    """Every username of a listing from `token` on, page by page, recording each page's size in `pages`."""
    token_name = "PaginationToken" if operation == "list_users" else "NextToken"
    names: list[str] = []
    while True:
        page = getattr(cognito, operation)(**kwargs, **({token_name: token} if token else {}))
        names += [u["Username"] for u in page["Users"]]
        if pages is not None:
            pages.append(len(page["Users"]))
        token = page.get(token_name)
        if not token:
            return names


def test_indexed_users_keeps_its_case_folded_index_through_every_kind_of_change() -> None:
    users = IndexedUsers({"Bob": 1})
    users["bob"] = 2  # a case-sensitive pool may hold both
    users.update({"Carol": 3})
    users.setdefault("Dave", 4)
    start = users.version

    assert users.by_folded_name("bob") == 1
    del users["Bob"]
    assert users.by_folded_name("bob") == 2
    assert users.pop("bob") == 2 and users.by_folded_name("bob") is None
    assert users.pop("nobody", None) is None
    assert users.popitem() == ("Dave", 4) and users.by_folded_name("dave") is None
    assert users.version == start + 3
    assert list(users) == ["Carol"] and users.by_folded_name("carol") == 3
    users.clear()
    assert users.by_folded_name("carol") is None and not users.folded


def test_versioned_set_counts_each_change() -> None:
    members = VersionedSet()
    members.add("a")
    members.discard("a")
    members.add("b")
    members.remove("b")
    assert members.version == 4 and not members


def test_case_insensitive_look_ups_follow_deletes_and_re_creates(cognito) -> None:
    pool = make_pool(cognito)
    add_users(cognito, pool, ["Alice", "bob"])
    assert cognito.admin_get_user(UserPoolId=pool, Username="ALICE")["Username"] == "Alice"

    cognito.admin_delete_user(UserPoolId=pool, Username="alice")
    with pytest.raises(ClientError) as exc_info:
        cognito.admin_get_user(UserPoolId=pool, Username="Alice")
    assert exc_info.value.response["Error"]["Code"] == "UserNotFoundException"

    add_users(cognito, pool, ["aLiCe"])
    assert cognito.admin_get_user(UserPoolId=pool, Username="alice")["Username"] == "aLiCe"
    with pytest.raises(ClientError) as exc_info:
        add_users(cognito, pool, ["BOB"])
    assert exc_info.value.response["Error"]["Code"] == "UsernameExistsException"


def test_a_case_sensitive_pool_keeps_names_differing_by_case_apart(cognito) -> None:
    pool = make_pool(cognito, case_sensitive=True)
    add_users(cognito, pool, ["Bob", "bob"])
    with pytest.raises(ClientError):
        cognito.admin_get_user(UserPoolId=pool, Username="BOB")
    assert sorted(read_all(cognito, "list_users", UserPoolId=pool)) == ["Bob", "bob"]


def test_list_users_pages_in_creation_order_and_follow_changes_between_pages(cognito) -> None:
    pool = make_pool(cognito)
    names = [f"user{i:03d}" for i in range(150)]
    add_users(cognito, pool, names)
    pages: list[int] = []
    assert read_all(cognito, "list_users", pages, UserPoolId=pool) == names
    assert pages == [60, 60, 30]

    first = cognito.list_users(UserPoolId=pool, Limit=60)
    add_users(cognito, pool, ["late-arrival"])
    cognito.admin_delete_user(UserPoolId=pool, Username="user100")
    rest = read_all(cognito, "list_users", token=first["PaginationToken"], UserPoolId=pool, Limit=60)

    seen = [u["Username"] for u in first["Users"]] + rest
    assert seen == [n for n in names if n != "user100"] + ["late-arrival"]


def test_a_page_token_whose_user_was_deleted_is_refused_as_moto_refuses_it(cognito) -> None:
    pool = make_pool(cognito)
    add_users(cognito, pool, [f"user{i:03d}" for i in range(70)])
    first = cognito.list_users(UserPoolId=pool, Limit=60)
    cognito.admin_delete_user(UserPoolId=pool, Username="user060")  # the first user of the next page

    with pytest.raises(ClientError):
        cognito.list_users(UserPoolId=pool, Limit=60, PaginationToken=first["PaginationToken"])


def test_list_users_filters_on_sub_prefix_and_on_changing_attributes(cognito) -> None:
    pool = make_pool(cognito)
    names = [f"user{i:03d}" for i in range(130)]
    add_users(cognito, pool, names, email="same@example.com")
    subs = {
        u["Username"]: next(a["Value"] for a in u["Attributes"] if a["Name"] == "sub")
        for u in cognito.list_users(UserPoolId=pool, Limit=60)["Users"]
    }
    shards = {d: read_all(cognito, "list_users", UserPoolId=pool, Filter=f'sub ^= "{d}"') for d in "0123456789abcdef"}
    assert sorted(n for shard in shards.values() for n in shard) == names
    assert all(subs[n].startswith(d) for d, shard in shards.items() for n in shard if n in subs)

    assert len(read_all(cognito, "list_users", UserPoolId=pool, Filter='email = "same@example.com"')) == 130
    cognito.admin_update_user_attributes(
        UserPoolId=pool, Username="user007", UserAttributes=[{"Name": "email", "Value": "other@example.com"}]
    )
    assert read_all(cognito, "list_users", UserPoolId=pool, Filter='email = "other@example.com"') == ["user007"]
    assert len(read_all(cognito, "list_users", UserPoolId=pool, Filter='email = "same@example.com"')) == 129


def test_list_users_in_group_follows_membership_changes(cognito) -> None:
    pool = make_pool(cognito)
    names = [f"user{i:03d}" for i in range(100)]
    add_users(cognito, pool, names)
    cognito.create_group(UserPoolId=pool, GroupName="staff")
    for name in names[::2]:
        cognito.admin_add_user_to_group(UserPoolId=pool, Username=name, GroupName="staff")
    assert read_all(cognito, "list_users_in_group", UserPoolId=pool, GroupName="staff") == names[::2]

    cognito.admin_remove_user_from_group(UserPoolId=pool, Username="user004", GroupName="staff")
    cognito.admin_add_user_to_group(UserPoolId=pool, Username="user001", GroupName="staff")
    expected = sorted({*names[::2], "user001"} - {"user004"})
    assert read_all(cognito, "list_users_in_group", UserPoolId=pool, GroupName="staff") == expected
