"""Who is who across the two pools: the name that identifies a user to the new pool, in its sign-in model.

A new pool with usernames knows a migrated user by the old username (the trigger keeps it; aliases resolve to
it). A new pool that signs in by email or phone number (``UsernameAttributes``) names its users with
generated ids: the user typed the email (or phone number) and the trigger found its owner in the old pool by
that verified value, so that value is what links the two users, and what an import row must carry as
``cognito:username``. Names are compared as the new pool compares them: case-folded unless it is case
sensitive. Pure functions of frames; the report, the stragglers' file and the cutover share them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

SIGN_IN_ATTRIBUTES = ("email", "phone_number")  # what UsernameAttributes may hold, in the order tried


def sign_in_attributes(new_pool: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The new pool's UsernameAttributes in the order they are tried (empty: users have usernames)."""
    declared = set((new_pool or {}).get("UsernameAttributes") or [])
    return tuple(a for a in SIGN_IN_ATTRIBUTES if a in declared)


def alias_attributes(new_pool: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The new pool's AliasAttributes (empty when it has none, or signs in by UsernameAttributes)."""
    return tuple((new_pool or {}).get("AliasAttributes") or [])


def names(users: pd.DataFrame, sign_in: Sequence[str], verified_only: bool) -> pd.Series:
    """Each user's name in the new pool's sign-in model: the username, or the first of ``sign_in`` the user
    has (verified, for old-pool users: the trigger finds owners by verified values only). None where the
    user has none: such an old user cannot sign in to the new pool."""
    if not sign_in:
        return users["username"]
    chosen = pd.Series(None, index=users.index, dtype=object)
    for attribute in reversed(sign_in):  # the first attribute wins: it is written last
        if attribute not in users.columns:
            continue
        value = users[attribute].where(users[attribute].notna() & (users[attribute].astype(str) != ""))
        if verified_only:
            flag = f"{attribute}_verified"
            no_flag = pd.Series(False, index=users.index)  # nobody's is verified
            ok = users[flag].astype(str).str.lower() == "true" if flag in users.columns else no_flag
            value = value.where(ok)
        chosen = value.where(value.notna(), chosen)
    return chosen.astype(object)


def fold(values: pd.Series, case_sensitive: bool) -> pd.Series:
    """Names as the new pool compares them (None stays None)."""
    if case_sensitive:
        return values
    return values.map(lambda v: v.casefold() if isinstance(v, str) else None)


def describe(sign_in: Sequence[str]) -> str:
    """'username', or e.g. 'verified email or phone number', for messages."""
    return " or ".join(a.replace("_", " ") for a in sign_in) if sign_in else "username"
