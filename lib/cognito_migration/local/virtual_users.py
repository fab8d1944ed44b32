"""The users of a virtual pool: user ``i`` of ``N`` as a pure function of (seed, i), never stored.

The same people and quirk families as the legacy generator (``legacy.generate_users``), laid out so that every
question the local AWS is asked about them is answered without a list of N users:

- ``sub``: a UUID whose first group (8 hex digits) is a prefix-preserving bijection of ``i mod 16**8``: its
  first L digits are a bijection of ``i mod 16**L``. The users of ``sub ^= "a3"`` are ``r, r + 256, ...``
  for one r, so a shard is an arithmetic progression and any page of it is found in one step.
- usernames: ``first.last<n>`` (and, for 15%, ``firstl<m>``), the first and last names chosen by ``i mod 1520``
  (40 x 38, through seeded permutations), the number by ``i // 1520``: ``i`` is read back from the name
  (AdminGetUser, ``username =`` and ``email =`` filters are one step).
- state (status, MFA, no verified contact, bad phone): one of 200 slots, ``(i // 256 + c[i mod 256]) mod 200``,
  so every shard has the legacy shares; ``missing_name`` and ``no_custom_attributes`` likewise (mod 20, mod 10).
- groups: one of 625 slots, ``i mod 625``: a group's members are a union of residue classes.
- case collisions: in every complete block of 200 users, one pair whose usernames differ only by case and
  another whose emails do (N // 200 pairs each, as the legacy pool has count // 200).

Counts (``virtual_truth``) follow from the same layout by arithmetic.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property

from .legacy import (
    _BAD_PHONE_FORMATS,
    _DOMAINS,
    _FIRST,
    _FIRST_SIGNUP,
    _LAST,
    _SIGNUP_SPAN_DAYS,
    GROUP_NAMES,
    LegacyUser,
    _case_variant,
)

SUB_DIGITS = 8  # the sub's first group: a bijection of i mod 16**8, so a pool holds fewer than 16**8 users
MAX_USERS = 16**SUB_DIGITS - 1
NAME_PERIOD = len(_FIRST) * len(_LAST)  # 1520 first.last heads, then the number grows
SHARD_PERIOD = 256  # i mod 256 is the sub's first two hex digits
STATE_SLOTS, NAME_SLOTS, CUSTOM_SLOTS, GROUP_SLOTS, PAIR_BLOCK = 200, 20, 10, 625, 200
PHONE_SPACE = 10**7
_PHONE_STEP = 6_180_339  # coprime with 10: i -> the phone's 7 digits is a bijection of i mod 10**7
_M64 = (1 << 64) - 1
_HEX = "0123456789abcdef"
_NAME_SKEW = 11
_PAIR_STRIDE = PAIR_BLOCK // 4
# The roles of a block's four pair offsets: username first, username second, email first, email second.
_PAIR_ROLES = tuple(itertools.permutations(range(4)))
_PAIR_FIRST = {"username": 0, "email": 2}
_DOTTED = re.compile(r"^([a-z]+)\.([a-z]+)([1-9]\d*)$")
_JOINED = re.compile(r"^([a-z]+)([a-z])([1-9]\d*)$")


@dataclass(frozen=True)
class State:
    """One of the 200 state slots: what the legacy generator's ``_assign_states`` and contact quirks set."""

    status: str
    enabled: bool
    mfa: str | None
    quirks: frozenset[str]


# (quirks, status, enabled, mfa, slots of 200): the legacy shares (quirk_quotas) in half-percent slots. A quarter
# of the users without a verified contact are FORCE_CHANGE_PASSWORD (they could never finish a reset), the
# rest and the bad phones are among users without MFA or a forced change, as in the legacy generator.
STATE_MIX: tuple[tuple[tuple[str, ...], str, bool, str | None, int], ...] = (
    (("unconfirmed",), "UNCONFIRMED", True, None, 6),
    (("force_change_password",), "FORCE_CHANGE_PASSWORD", True, None, 3),
    (("force_change_password", "no_verified_contact"), "FORCE_CHANGE_PASSWORD", True, None, 1),
    (("reset_required",), "RESET_REQUIRED", True, None, 2),
    (("disabled",), "CONFIRMED", False, None, 4),
    (("sms_mfa",), "CONFIRMED", True, "SMS_MFA", 8),
    (("totp_mfa",), "CONFIRMED", True, "SOFTWARE_TOKEN_MFA", 4),
    (("no_verified_contact",), "CONFIRMED", True, None, 3),
    (("bad_phone",), "CONFIRMED", True, None, 2),
    ((), "CONFIRMED", True, None, 167),
)
# The legacy generator's single-group weights (viewers above all); 20% multi-group, 60% one group, 20% none.
_GROUP_WEIGHTS = (1, 1, 3, 1, 2, 4, 4, 3, 3, 3, 5, 20)
MULTI_GROUP_SLOTS, SINGLE_GROUP_SLOTS = 125, 375


def _mix(x: int) -> int:
    """splitmix64's finaliser: a cheap, well-spread 64-bit hash of an integer."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


class VirtualUsers:
    """The ``users`` users of a virtual pool made with ``seed``. Holds a few small tables, never a user.

    ``work`` counts the users looked at (each ``user`` or ``attribute`` call): tests prove with it that a page
    costs the same wherever it is in the pool."""

    def __init__(self, users: int, seed: int = 7) -> None:
        if not 0 <= users <= MAX_USERS:
            raise ValueError(f"a virtual pool holds 0 to {MAX_USERS:,} users (its subs encode the index), not {users}")
        self.users = users
        self.seed = seed
        self.work = 0
        self._key = hashlib.blake2b(f"virtual-pool:{seed}".encode(), digest_size=32).digest()
        self._salt = int.from_bytes(self._key[:8], "big")

    def __repr__(self) -> str:
        return f"VirtualUsers(users={self.users}, seed={self.seed})"

    # -- tables (a few hundred entries each, whatever the pool's size) ------------------------------------

    @cached_property
    def _first_names(self) -> list[str]:
        return random.Random(f"{self.seed}:first").sample(_FIRST, len(_FIRST))

    @cached_property
    def _last_names(self) -> list[str]:
        return random.Random(f"{self.seed}:last").sample(_LAST, len(_LAST))

    @cached_property
    def first_index(self) -> dict[str, int]:
        return {name: a for a, name in enumerate(self._first_names)}

    @cached_property
    def last_index(self) -> dict[str, int]:
        return {name: b for b, name in enumerate(self._last_names)}

    @cached_property
    def states(self) -> tuple[State, ...]:
        """The 200 state slots, in a seeded order."""
        slots = [
            State(status, enabled, mfa, frozenset(quirks))
            for quirks, status, enabled, mfa, count in STATE_MIX
            for _ in range(count)
        ]
        random.Random(f"{self.seed}:states").shuffle(slots)
        return tuple(slots)

    @cached_property
    def group_slots(self) -> tuple[tuple[str, ...], ...]:
        """The 625 group slots: 125 in 2-5 groups, 375 in one (weighted as the legacy pool), 125 in none."""
        rng = random.Random(f"{self.seed}:groups")
        multi = [tuple(rng.sample(GROUP_NAMES, rng.randint(2, 5))) for _ in range(MULTI_GROUP_SLOTS)]
        single = [(rng.choices(GROUP_NAMES, weights=_GROUP_WEIGHTS)[0],) for _ in range(SINGLE_GROUP_SLOTS)]
        slots = [*multi, *single, *[()] * (GROUP_SLOTS - MULTI_GROUP_SLOTS - SINGLE_GROUP_SLOTS)]
        rng.shuffle(slots)
        return tuple(slots)

    def group_residues(self, group: str) -> tuple[int, ...]:
        """The group's members are the users with ``i mod GROUP_SLOTS`` in this (sorted) tuple."""
        return tuple(s for s, groups in enumerate(self.group_slots) if group in groups)

    @cached_property
    def offsets(self) -> dict[str, tuple[int, ...]]:
        """Per kind ("state", "name", "custom"), the slot offset of each shard (i mod 256): spread evenly over
        the slots, in a seeded order, so that however few rows the shards have, together they cover every slot
        about as often: a pool of any size has the legacy shares, give or take a user per slot."""
        spread = {}
        for kind, slots in (("state", STATE_SLOTS), ("name", NAME_SLOTS), ("custom", CUSTOM_SLOTS)):
            order = random.Random(f"{self.seed}:{kind}").sample(range(SHARD_PERIOD), SHARD_PERIOD)
            spread[kind] = tuple(position * slots // SHARD_PERIOD for position in order)
        return spread

    # -- the index's coordinates -------------------------------------------------------------------------

    def _digest(self, i: int) -> int:
        return int.from_bytes(hashlib.blake2b(i.to_bytes(8, "big"), key=self._key, digest_size=24).digest(), "big")

    def state(self, i: int) -> State:
        shard, row = i % SHARD_PERIOD, i // SHARD_PERIOD
        return self.states[(row + self.offsets["state"][shard]) % STATE_SLOTS]

    def missing_name(self, i: int) -> bool:
        return (i // SHARD_PERIOD + self.offsets["name"][i % SHARD_PERIOD]) % NAME_SLOTS == 0

    def no_custom_attributes(self, i: int) -> bool:
        return (i // SHARD_PERIOD + self.offsets["custom"][i % SHARD_PERIOD]) % CUSTOM_SLOTS == 0

    def groups(self, i: int) -> tuple[str, ...]:
        return self.group_slots[i % GROUP_SLOTS]

    def _pair_layout(self, block: int) -> tuple[int, tuple[int, ...]] | None:
        """A complete block's four pair offsets, ``base + 50 k``, and their roles (``roles[k]``: 0 and 1 the first
        and second of the username pair, 2 and 3 of the email pair); None for the pool's incomplete last block."""
        if PAIR_BLOCK * (block + 1) > self.users:
            return None
        h = _mix(self._salt ^ (0x5A17 << 48) ^ block)
        return h % _PAIR_STRIDE, _PAIR_ROLES[(h >> 8) % len(_PAIR_ROLES)]

    def partner(self, i: int, kind: str) -> tuple[int, bool] | None:
        """(partner index, i is the second) when i is in its block's ``kind`` ("username"/"email") pair."""
        block, at = divmod(i, PAIR_BLOCK)
        layout = self._pair_layout(block)
        if layout is None or at % _PAIR_STRIDE != layout[0]:
            return None
        base, roles = layout
        role, first = roles[at // _PAIR_STRIDE], _PAIR_FIRST[kind]
        if role not in (first, first + 1):
            return None
        other = roles.index(first + (role == first))
        return block * PAIR_BLOCK + base + _PAIR_STRIDE * other, role == first + 1

    def pair_second(self, block: int, kind: str) -> int | None:
        """The second user of the block's ``kind`` pair (the one whose name has capitals), None if none."""
        layout = self._pair_layout(block)
        if layout is None:
            return None
        base, roles = layout
        return block * PAIR_BLOCK + base + _PAIR_STRIDE * roles.index(_PAIR_FIRST[kind] + 1)

    # -- names ----------------------------------------------------------------------------------------------

    def names_of_head(self, head: int) -> tuple[str, str]:
        """(first, last), lowercase, of the users whose i mod 1520 is ``head``."""
        a, y = name_coordinates(head)
        return self._first_names[a], self._last_names[y]

    def natural_name(self, i: int, digest: int | None = None) -> str:
        """The lowercase name built from i alone (a username-pair's second user wears its partner's instead)."""
        number, head = divmod(i, NAME_PERIOD)
        a, y = name_coordinates(head)
        first, last = self._first_names[a], self._last_names[y]
        if self._joined(self._digest(i) if digest is None else digest):
            return f"{first}{last[0]}{100 + number * len(_LAST) + y}"
        return f"{first}.{last}{number + 1}"

    @staticmethod
    def _joined(digest: int) -> bool:
        return (digest >> 160) % 100 < 15  # 15% "firstl123", as in the legacy pool

    def index_of_natural_name(self, name: str) -> int | None:
        """The i whose natural name this is (lowercase, exact), or None."""
        dotted, joined = _DOTTED.match(name), _JOINED.match(name)
        if dotted and dotted[1] in self.first_index and dotted[2] in self.last_index:
            i = name_head(self.first_index[dotted[1]], self.last_index[dotted[2]])
            i += NAME_PERIOD * (int(dotted[3]) - 1)
        elif joined and joined[1] in self.first_index and int(joined[3]) >= 100:
            number, y = divmod(int(joined[3]) - 100, len(_LAST))
            if self._last_names[y][0] != joined[2]:
                return None
            i = name_head(self.first_index[joined[1]], y) + NAME_PERIOD * number
        else:
            return None
        return i if i < self.users and self.natural_name(i) == name else None

    def username(self, i: int) -> str:
        return self._username(i, None, self.partner(i, "username"))

    def _username(self, i: int, digest: int | None, pair: tuple[int, bool] | None) -> str:
        if pair is not None and pair[1]:  # the second of a pair: its partner's name with capitals
            return _case_variant(self.natural_name(pair[0]))
        return self.natural_name(i, digest)

    def email(self, i: int) -> str:
        return self._email(i, None, self.partner(i, "email"))

    def _email(self, i: int, digest: int | None, pair: tuple[int, bool] | None) -> str:
        if pair is not None and pair[1]:
            return _case_variant(self.email(pair[0]))
        d = self._digest(i) if digest is None else digest
        return f"{self.natural_name(i, d)}@{_DOMAINS[(d >> 128) % len(_DOMAINS)]}"

    def index_of_username(self, username: str) -> int | None:
        """The user of this exact username (the pool is case-sensitive), or None: one step, whatever N."""
        i = self.index_of_natural_name(username.lower())
        if i is None:
            return None
        pair = self.partner(i, "username")
        if username == username.lower():
            return None if pair is not None and pair[1] else i
        return pair[0] if pair is not None and not pair[1] and username == self.username(pair[0]) else None

    def index_of_email(self, email: str) -> int | None:
        """The user of this exact email, or None."""
        i = self.index_of_natural_name(email.partition("@")[0].lower())
        if i is None:
            return None
        if self.email(i) == email:
            return i
        pair = self.partner(i, "email")
        return pair[0] if pair is not None and not pair[1] and self.email(pair[0]) == email else None

    # -- sub and phone --------------------------------------------------------------------------------------

    @cached_property
    def _sub_digits(self) -> tuple[tuple[str, ...], ...]:
        """Per position of the sub's first group, a seeded permutation of the 16 hex digits."""
        rng = random.Random(f"{self.seed}:sub")
        return tuple(tuple(rng.sample(_HEX, 16)) for _ in range(SUB_DIGITS))

    def _sub_digit_offset(self, position: int, lower: int) -> int:
        return _mix(self._salt ^ (position << 56) ^ lower) & 15

    def sub_head(self, i: int) -> str:
        """The sub's first 8 hex digits: digit j is digit j of i (base 16, least significant first) shifted by
        a hash of the digits before it, then permuted, so the first L digits are a bijection of i mod 16**L."""
        digits = []
        for j, permutation in enumerate(self._sub_digits):
            lower = i & ((1 << (4 * j)) - 1)
            digits.append(permutation[((i >> (4 * j)) + self._sub_digit_offset(j, lower)) & 15])
        return "".join(digits)

    def residue_of_sub_prefix(self, prefix: str) -> int | None:
        """r such that the subs starting with ``prefix`` (at most 8 digits) are those of i = r mod 16**len; None
        when no sub can start so (not lowercase hex)."""
        if len(prefix) > SUB_DIGITS or any(c not in _HEX for c in prefix):
            return None
        lower = 0
        for j, char in enumerate(prefix):
            shifted = self._sub_digits[j].index(char)
            lower |= ((shifted - self._sub_digit_offset(j, lower)) & 15) << (4 * j)
        return lower

    def sub(self, i: int, digest: int | None = None) -> str:
        tail = f"{((self._digest(i) if digest is None else digest) >> 32) & ((1 << 96) - 1):024x}"
        variant = _HEX[8 + (int(tail[8], 16) & 3)]
        return f"{self.sub_head(i)}-{tail[0:4]}-4{tail[5:8]}-{variant}{tail[9:12]}-{tail[12:24]}"

    def phone_digits(self, i: int) -> int:
        return (i * _PHONE_STEP + self._salt) % PHONE_SPACE

    def residue_of_phone_digits(self, digits: int) -> int:
        """The i mod 10**7 of every user whose phone ends with these 7 digits."""
        return (digits - self._salt) * pow(_PHONE_STEP, -1, PHONE_SPACE) % PHONE_SPACE

    def phone(self, i: int, state: State, digest: int) -> str | None:
        if "bad_phone" in state.quirks:
            digits = f"{self.phone_digits(i):07d}"
            shape = _BAD_PHONE_FORMATS[(digest >> 168) % len(_BAD_PHONE_FORMATS)]
            return shape.format(a="555", b=digits[:3], c=digits[3:])  # Cognito never verifies it: not E.164
        if state.mfa == "SMS_MFA" or (digest >> 136) & 1:  # SMS MFA needs a phone; half of the others have one
            return f"+1555{self.phone_digits(i):07d}"
        return None

    # -- the whole user -----------------------------------------------------------------------------------

    def created_at(self, digest: int) -> datetime:
        return _FIRST_SIGNUP + timedelta(seconds=(digest & 0xFFFFFFFF) % (_SIGNUP_SPAN_DAYS * 86400))

    def user(self, i: int) -> LegacyUser:
        """User i, with every trait the legacy generator gives (``LegacyUser``; ``attributes`` without sub)."""
        if not 0 <= i < self.users:
            raise IndexError(f"user {i} is not in a virtual pool of {self.users} users")
        self.work += 1
        d = self._digest(i)
        state = self.state(i)
        quirks = set(state.quirks)
        username_pair, email_pair = self.partner(i, "username"), self.partner(i, "email")
        a, y = name_coordinates(i % NAME_PERIOD)
        first, last = self._first_names[a], self._last_names[y]
        unverified = "no_verified_contact" in quirks
        attributes = {"email": self._email(i, d, email_pair), "email_verified": "false" if unverified else "true"}
        if self.missing_name(i):
            quirks.add("missing_name")
        else:
            attributes["name"] = f"{first.capitalize()} {last.capitalize()}"
        attributes.update(given_name=first.capitalize(), family_name=last.capitalize())
        phone = self.phone(i, state, d)
        if phone is not None:
            attributes["phone_number"] = phone
            attributes["phone_number_verified"] = "false" if unverified or "bad_phone" in quirks else "true"
        created = self.created_at(d)
        if self.no_custom_attributes(i):
            quirks.add("no_custom_attributes")
        else:
            tier = (d >> 144) % 100
            attributes["custom:tier"] = "free" if tier < 70 else "pro" if tier < 95 else "enterprise"
            attributes["custom:signup_year"] = str(created.year)
        if username_pair is not None:
            quirks.add("case_duplicate_username")
        if email_pair is not None:
            quirks.add("case_duplicate_email")
        groups = self.groups(i)
        if len(groups) > 1:
            quirks.add("multi_group")
        return LegacyUser(
            username=self._username(i, d, username_pair),
            attributes=attributes,
            status=state.status,
            enabled=state.enabled,
            mfa=state.mfa,
            groups=groups,
            quirks=frozenset(quirks),
            created_at=created,
            sub=self.sub(i, d),
        )

    def attribute(self, i: int, name: str) -> str | None:
        """What a ListUsers filter on ``name`` compares for user i (None: the user has no such value), computing
        only that: filters that cannot be answered by arithmetic test candidates one by one with it."""
        self.work += 1
        if name == "username":
            return self.username(i)
        if name == "email":
            return self.email(i)
        if name in ("cognito:user_status", "status"):
            state = self.state(i)
            return state.status if name == "cognito:user_status" else "Enabled" if state.enabled else "Disabled"
        a, y = name_coordinates(i % NAME_PERIOD)
        first, last = self._first_names[a].capitalize(), self._last_names[y].capitalize()
        if name == "given_name":
            return first
        if name == "family_name":
            return last
        if name == "name":
            return None if self.missing_name(i) else f"{first} {last}"
        if name in ("sub", "phone_number"):
            digest = self._digest(i)
            return self.sub(i, digest) if name == "sub" else self.phone(i, self.state(i), digest)
        return None  # preferred_username: nobody has one, as in the legacy pool


def name_coordinates(head: int) -> tuple[int, int]:
    """(first name, last name) positions of a name head (i mod 1520); the last name is skewed by the first, so
    consecutive users do not share it."""
    a, q = head % len(_FIRST), head // len(_FIRST)
    return a, (q + _NAME_SKEW * a) % len(_LAST)


def name_head(a: int, y: int) -> int:
    """The inverse of name_coordinates."""
    return a + len(_FIRST) * ((y - _NAME_SKEW * a) % len(_LAST))
