"""ListUsers and ListUsersInGroup pages over a virtual pool, without a list of its users.

A filter becomes an ordered stream of candidate indices, by arithmetic on the pool's layout (``virtual_users``):
``sub ^= "a3"`` is the progression r, r + 256, ...; ``username =`` and ``email =`` one index read back from the
name; a name prefix the residues of the name heads it allows. Where the layout proves every candidate matches,
none is tested; elsewhere each candidate is tested, at most ``SCAN_BUDGET`` of them per request, and a request
that spends its budget answers the matches it found (maybe none) with a token to go on, as Cognito may answer a
filtered ListUsers. A page is the next ``limit`` matches from a position; its token is the position, signed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .virtual_users import GROUP_SLOTS, NAME_PERIOD, PHONE_SPACE, SUB_DIGITS, VirtualUsers

SCAN_BUDGET = 5000  # candidates tested per request at most, when a filter is not answered by arithmetic
# The filterable attributes and the filter grammar the local AWS answers for every pool (moto's list_users).
FILTERABLE = (
    "username",
    "email",
    "phone_number",
    "name",
    "given_name",
    "family_name",
    "preferred_username",
    "cognito:user_status",
    "status",
    "sub",
)
_FILTER = re.compile(r"([\w:]+)\s*(=|\^=)\s*\"(.*)\"")
_UUID_LENGTH = 36


class FilterError(ValueError):
    """A Filter the local AWS refuses for every pool; the message is the one it answers."""


class BadToken(ValueError):
    """A page token this pool did not issue for this request."""


class Candidates(Protocol):
    def first_from(self, index: int) -> int | None:
        """The first candidate at or after ``index``; None when there is none."""


@dataclass(frozen=True)
class Progression:
    """start, start + step, ... below stop."""

    start: int
    step: int
    stop: int

    def first_from(self, index: int) -> int | None:
        steps = max(0, -((self.start - index) // self.step))  # ceil((index - start) / step), at least 0
        candidate = self.start + steps * self.step
        return candidate if candidate < self.stop else None


@dataclass(frozen=True)
class Listed:
    """A few indices, sorted."""

    indices: tuple[int, ...]

    def first_from(self, index: int) -> int | None:
        at = bisect_left(self.indices, index)
        return self.indices[at] if at < len(self.indices) else None


@dataclass(frozen=True)
class Residues:
    """Every index below stop whose remainder by ``modulus`` is in ``residues`` (sorted)."""

    modulus: int
    residues: tuple[int, ...]
    stop: int

    def first_from(self, index: int) -> int | None:
        if not self.residues:
            return None
        base, rest = divmod(index, self.modulus)
        at = bisect_left(self.residues, rest)
        candidate = (
            base * self.modulus + self.residues[at]
            if at < len(self.residues)
            else ((base + 1) * self.modulus + self.residues[0])
        )
        return candidate if candidate < self.stop else None


@dataclass(frozen=True)
class PairSeconds:
    """The second users of one kind of case pair ("username", "email"): one per complete block."""

    users: VirtualUsers
    kind: str

    def first_from(self, index: int) -> int | None:
        block = index // 200
        while (candidate := self.users.pair_second(block, self.kind)) is not None:
            if candidate >= index:
                return candidate
            block += 1
        return None


@dataclass(frozen=True)
class Selection:
    """Candidates in the listing's order and, unless every candidate matches, the test each must pass."""

    candidates: Candidates
    test: Callable[[int], bool] | None = None


def nobody() -> Listed:
    return Listed(())


def select(users: VirtualUsers, expression: str | None) -> Selection:
    """The users a ListUsers ``Filter`` selects. Refuses what the local AWS refuses for any pool, with its words."""
    everyone = Progression(0, 1, users.users)
    if not expression:
        return Selection(everyone)
    match = _FILTER.match(expression)
    if match is None:
        raise FilterError("Error while parsing filter")
    name, operator, value = match.groups()
    if name not in FILTERABLE:
        raise FilterError(f"Invalid search attribute: {name}")

    def test(index: int) -> bool:
        found = users.attribute(index, name)
        return found is not None and (found == value if operator == "=" else found.startswith(value))

    prefix = operator == "^="
    if name == "sub":
        residue = users.residue_of_sub_prefix(value[:SUB_DIGITS])
        if residue is None or (not prefix and len(value) != _UUID_LENGTH):
            return Selection(nobody())
        if prefix and len(value) <= SUB_DIGITS:  # the whole shard: an arithmetic progression, every one a match
            return Selection(Progression(residue, 16 ** len(value), users.users))
        return Selection(Progression(residue, 16**SUB_DIGITS, users.users), test)  # at most one user
    if name in ("username", "email") and not prefix:
        index = users.index_of_username(value) if name == "username" else users.index_of_email(value)
        return Selection(Listed(() if index is None else (index,)))
    if name in ("username", "email"):
        return Selection(_name_candidates(users, name, value), test)
    if name in ("given_name", "family_name", "name"):
        return Selection(_person_candidates(users, name, value, prefix), None if name != "name" else test)
    if name == "phone_number" and not prefix:
        digits = re.sub(r"\D", "", value)
        if len(digits) < 7:
            return Selection(nobody())
        residue = users.residue_of_phone_digits(int(digits[-7:]))
        return Selection(Progression(residue, PHONE_SPACE, users.users), test)
    if name == "preferred_username":
        return Selection(nobody())  # nobody has one, as in the legacy pool
    return Selection(everyone, test)  # statuses, phone prefixes: tested one by one, under the budget


def _name_candidates(users: VirtualUsers, kind: str, value: str) -> Candidates:
    """Candidates for ``username ^=`` / ``email ^=``: a prefix with capitals can only be a case pair's second
    user's; otherwise the users whose name head (i mod 1520) the prefix allows; an email prefix that names the
    whole local part, at most its two owners."""
    local, at, _ = value.partition("@")
    if at:
        owner = users.index_of_natural_name(local.lower())
        pair = None if owner is None else users.partner(owner, kind)
        return Listed(tuple(sorted({i for i in (owner, pair and pair[0]) if i is not None})))
    if local != local.lower():
        return PairSeconds(users, kind)
    heads = tuple(head for head in range(NAME_PERIOD) if _head_allows(users, head, local))
    return Residues(NAME_PERIOD, heads, users.users)


def _head_allows(users: VirtualUsers, head: int, prefix: str) -> bool:
    """Can a natural name of this head start with ``prefix``? ("first.last<n>" or "firstl<m>")"""
    first, last = users.names_of_head(head)
    for stem in (f"{first}.{last}", f"{first}{last[0]}"):
        if stem.startswith(prefix) or (prefix.startswith(stem) and prefix[len(stem) :].isdigit()):
            return True
    return False


def _person_candidates(users: VirtualUsers, name: str, value: str, prefix: bool) -> Candidates:
    """given_name, family_name and name are functions of the name head (i mod 1520)."""

    def allows(head: int) -> bool:
        first, last = (part.capitalize() for part in users.names_of_head(head))
        shown = {"given_name": first, "family_name": last, "name": f"{first} {last}"}[name]
        return shown.startswith(value) if prefix else shown == value

    return Residues(NAME_PERIOD, tuple(h for h in range(NAME_PERIOD) if allows(h)), users.users)


def members(users: VirtualUsers, group: str) -> Selection:
    """A group's members: the users whose group slot (i mod 625) holds it."""
    return Selection(Residues(GROUP_SLOTS, users.group_residues(group), users.users))


def page(selection: Selection, start: int, limit: int, budget: int = SCAN_BUDGET) -> tuple[list[int], int | None]:
    """The next ``limit`` matches from index ``start``, and where the page after it starts (None: no more).
    Tests at most ``budget`` candidates; when they run out, the page may be short, even empty, and goes on."""
    found: list[int] = []
    at, tested = start, 0
    while (candidate := selection.candidates.first_from(at)) is not None:
        if selection.test is not None:
            if tested == budget:
                return found, candidate
            tested += 1
            if not selection.test(candidate):
                at = candidate + 1
                continue
        if len(found) == limit:
            return found, candidate
        found.append(candidate)
        at = candidate + 1
    return found, None


class PageTokens:
    """Page tokens: a position, signed for one listing of one pool (operation, pool id, filter or group), so a
    token is refused anywhere else, and the same pool made again (same id, size and seed) takes it back."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, scope: str, index: int) -> bytes:
        return hmac.new(self._secret, f"{scope}\n{index}".encode(), hashlib.sha256).digest()[:12]

    def _mask(self, mac: bytes) -> int:
        # The position is hidden behind the signature: tokens say nothing a caller could build on.
        return int.from_bytes(hmac.new(self._secret, mac, hashlib.sha256).digest()[:8], "big")

    def encode(self, scope: str, index: int) -> str:
        mac = self._mac(scope, index)
        raw = mac + (index ^ self._mask(mac)).to_bytes(8, "big")
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def decode(self, scope: str, token: str) -> int:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise BadToken(token) from None
        if len(raw) != 20:
            raise BadToken(token)
        mac = raw[:12]
        index = int.from_bytes(raw[12:], "big") ^ self._mask(mac)
        if not hmac.compare_digest(mac, self._mac(scope, index)):
            raise BadToken(token)
        return index
