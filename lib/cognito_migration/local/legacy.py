"""The legacy-pool generator: a reproducible "old" user pool with the quirks a real migration meets.

Record generation (`generate_users`) is pure; `seed_legacy_pool` writes moto's in-process backend directly
(no HTTP, a few thousand users in well under a second); `replay_wave` signs a sample of users in to the NEW
pool over HTTP so the report has something to show. Passwords are derived, never stored or printed.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import random
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

DEFAULT_ACCOUNT_ID = "123456789012"  # moto's default account
LEGACY_POOL_NAME = "legacy-users"
# Fixed ids let params/local.yaml name the old pool and its clients without discovery.
LEGACY_MIGRATION_CLIENT_ID = "legacymigrationclient00001"
LEGACY_WEB_CLIENT_ID = "legacywebclient00000000001"
UNUSED_ACCOUNT_VALIDITY_DAYS = 7  # what an old pool still describes beside TemporaryPasswordValidityDays


def legacy_pool_id(region: str) -> str:
    return f"{region}_Legacy001"


# (name, description, precedence): 12 groups, more than the first page of 10 that peers read.
GROUPS: tuple[tuple[str, str, int], ...] = (
    ("admins", "Full administrative access", 1),
    ("ops", "Operations on-call", 2),
    ("engineering", "Product engineering", 3),
    ("auditors", "Read-only audit access", 4),
    ("billing", "Invoices and payment methods", 5),
    ("support", "Customer support agents", 6),
    ("editors", "Can edit content", 10),
    ("partners", "External partner accounts", 20),
    ("sales", "Sales team", 30),
    ("marketing", "Marketing team", 40),
    ("beta-testers", "Early access to new features", 50),
    ("viewers", "Read-only users", 100),
)
GROUP_NAMES = tuple(name for name, _, _ in GROUPS)
_FIRST = (
    "james mary john patricia robert jennifer michael linda william elizabeth david barbara richard "
    "susan joseph jessica thomas sarah charles karen daniel nancy matthew lisa anthony betty mark "
    "sandra paul ashley steven emily andrew donna kevin michelle brian carol george amanda"
).split()
_LAST = (
    "smith johnson williams brown jones garcia miller davis rodriguez martinez hernandez lopez "
    "gonzalez wilson anderson thomas taylor moore jackson martin lee perez thompson white harris "
    "sanchez clark ramirez lewis robinson walker young allen king wright scott torres hill"
).split()
_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com")
_BAD_PHONE_FORMATS = ("({a}) {b}-{c}", "{a}.{b}.{c}", "{a} {b} {c}", "1-{a}-{b}-{c}")
_FIRST_SIGNUP, _SIGNUP_SPAN_DAYS = datetime(2017, 1, 1, tzinfo=UTC), 8 * 365


@dataclass(frozen=True)
class LegacyUser:
    """One user of the old pool, as generated. `quirks` names every trait a migration must care about."""

    username: str
    attributes: dict[str, str]
    status: str
    enabled: bool
    mfa: str | None
    groups: tuple[str, ...]
    quirks: frozenset[str]
    created_at: datetime
    sub: str


def demo_password(username: str, seed: int) -> str:
    """The user's password in the demo pool: stable for (username, seed), 16 characters, with upper, lower,
    digit and symbol, so it passes a MinimumLength 12 all-classes policy. Never print or store it."""
    key = f"cognito-migration-demo-{seed}".encode()
    digest = hmac.new(key, username.encode(), hashlib.sha256).digest()
    body = base64.urlsafe_b64encode(digest).decode().rstrip("=")[:12]
    # The tail guarantees every character class whatever the body happened to contain.
    tail = (
        "ABCDEFGHJKLMNPQRSTUVWXYZ"[digest[-1] % 24]
        + "abcdefghijkmnpqrstuvwxyz"[digest[-2] % 24]
        + str(digest[-3] % 10)
        + "!#%*+-=?@^_~"[digest[-4] % 12]
    )
    return body + tail


def wrong_password(username: str, seed: int) -> str:
    """A policy-valid password that is NOT the user's: for proving that wrong passwords are refused."""
    return demo_password(f"wrong:{username}", seed)


def quirk_quotas(count: int) -> dict[str, int]:
    """Exact number of users carrying each quota-driven quirk among `count` users (see generate_users)."""
    pairs = count // 200
    return {
        "unconfirmed": count * 3 // 100,
        "force_change_password": count * 2 // 100,
        "reset_required": count // 100,
        "disabled": count * 2 // 100,
        "sms_mfa": count * 4 // 100,
        "totp_mfa": count * 2 // 100,
        "no_verified_contact": count * 2 // 100,
        "bad_phone": count // 100,
        "missing_name": count * 5 // 100,
        "no_custom_attributes": count // 10,
        "case_duplicate_username": 2 * pairs,
        "case_duplicate_email": 2 * pairs,
        "multi_group": count // 5,
    }


def generate_users(count: int = 2000, seed: int = 7) -> list[LegacyUser]:
    """`count` reproducible users (same seed, same users). With q = quirk_quotas(count), EXACTLY:

    - state, disjoint slices of one random permutation, in this order: q["unconfirmed"] (3%) UNCONFIRMED,
      q["force_change_password"] (2%) FORCE_CHANGE_PASSWORD, q["reset_required"] (1%) RESET_REQUIRED,
      q["disabled"] (2%) CONFIRMED but disabled, q["sms_mfa"] (4%) and q["totp_mfa"] (2%) CONFIRMED with
      SMS_MFA / SOFTWARE_TOKEN_MFA preferred; everyone else CONFIRMED, enabled, no MFA. Each slice's quirk
      is its name (e.g. "totp_mfa").
    - "no_verified_contact" (2%): email_verified and phone_number_verified are not "true". q//4 of them
      are drawn from FORCE_CHANGE_PASSWORD and TOTP users (who would migrate as RESET_REQUIRED and could
      never finish the reset), the rest from users with none of SMS MFA, TOTP or FORCE_CHANGE_PASSWORD.
    - "bad_phone" (1%): phone_number not E.164, not verified; drawn from users without SMS MFA or the above.
    - "missing_name" (5%): no `name` attribute. "no_custom_attributes" (10%): no custom:tier/signup_year.
    - "case_duplicate_username": count//200 pairs; the second user's username is the first's with
      capitalised parts ("jane.doe42" / "Jane.Doe42"). "case_duplicate_email": count//200 other pairs
      whose emails differ only by case. Both users of a pair carry the quirk.
    - "multi_group" (20%): in 2-5 groups; the others in 0 or 1 group.
    Usernames are otherwise unique ignoring case, emails too; all other traits are random.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    rng = random.Random(seed)
    drafts = [_draft_user(rng, *person) for person in _unique_people(rng, count)]
    q = quirk_quotas(count)
    _assign_states(rng, drafts, q)
    _assign_contact_quirks(rng, drafts, q)
    for key in ("missing_name", "no_custom_attributes"):
        for d in _pick(rng, drafts, q[key]):
            d["quirks"].add(key)
    _assign_case_duplicates(rng, drafts, count // 200)
    for d in _pick(rng, drafts, q["multi_group"]):
        d["groups"] = tuple(rng.sample(GROUP_NAMES, rng.randint(2, 5)))
        d["quirks"].add("multi_group")
    return [_finish(d) for d in drafts]


def _unique_people(rng: random.Random, count: int) -> list[tuple[str, str, str]]:
    """(username, first name, last name) triples, usernames unique ignoring case."""
    seen: set[str] = set()
    people: list[tuple[str, str, str]] = []
    # The numbers' range grows with the pool, so a million users still find free names at once (with 40 x 38
    # names and 1-99 there are 150,000 "first.last42" names; the draws stalled as they ran out).
    top, wide = max(99, count // 500), max(999, count // 100)
    while len(people) < count:
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        # Mostly "firstname.lastname42", some "firstnamel123": the shapes real consumer pools show.
        if rng.random() < 0.85:
            name = f"{first}.{last}{rng.randint(1, top)}"
        else:
            name = f"{first}{last[0]}{rng.randint(100, wide)}"
        if name not in seen:  # all lowercase here, so this is a case-insensitive check
            seen.add(name)
            people.append((name, first, last))
    return people


def _draft_user(rng: random.Random, username: str, first: str, last: str) -> dict[str, Any]:
    return {
        "username": username,
        "given": first.capitalize(),
        "family": last.capitalize(),
        "email": f"{username}@{rng.choice(_DOMAINS)}",
        "phone": _e164(rng) if rng.random() < 0.5 else None,
        "tier": rng.choices(("free", "pro", "enterprise"), weights=(70, 25, 5))[0],
        "created_at": _FIRST_SIGNUP + timedelta(seconds=rng.randrange(_SIGNUP_SPAN_DAYS * 86400)),
        "sub": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        # Most users sit in one group, viewers above all; multi_group users get theirs later.
        "groups": (rng.choices(GROUP_NAMES, weights=(1, 1, 3, 1, 2, 4, 4, 3, 3, 3, 5, 20))[0],)
        if rng.random() < 0.75
        else (),
        "status": "CONFIRMED",
        "enabled": True,
        "mfa": None,
        "quirks": set(),
    }


def _e164(rng: random.Random) -> str:
    return f"+1555{rng.randrange(10**7):07d}"  # 555: fictional numbers


def _pick(
    rng: random.Random, drafts: Sequence[dict[str, Any]], k: int, exclude: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """k random drafts carrying none of the `exclude` quirks; fails loudly if the rule cannot be met."""
    banned = set(exclude)
    candidates = [d for d in drafts if not banned & d["quirks"]]
    if len(candidates) < k:
        raise ValueError(f"only {len(candidates)} candidates for {k} users excluding {sorted(banned)}")
    return rng.sample(candidates, k)


def _assign_states(rng: random.Random, drafts: list[dict[str, Any]], q: dict[str, int]) -> None:
    order = rng.sample(drafts, len(drafts))
    slices = (
        ("unconfirmed", "UNCONFIRMED", True, None),
        ("force_change_password", "FORCE_CHANGE_PASSWORD", True, None),
        ("reset_required", "RESET_REQUIRED", True, None),
        ("disabled", "CONFIRMED", False, None),
        ("sms_mfa", "CONFIRMED", True, "SMS_MFA"),
        ("totp_mfa", "CONFIRMED", True, "SOFTWARE_TOKEN_MFA"),
    )
    start = 0
    for quirk, status, enabled, mfa in slices:
        for d in order[start : start + q[quirk]]:
            d.update(status=status, enabled=enabled, mfa=mfa)
            d["quirks"].add(quirk)
            if mfa == "SMS_MFA" and d["phone"] is None:
                d["phone"] = _e164(rng)  # SMS MFA needs a phone number
        start += q[quirk]


def _assign_contact_quirks(rng: random.Random, drafts: list[dict[str, Any]], q: dict[str, int]) -> None:
    resetting = [d for d in drafts if d["quirks"] & {"force_change_password", "totp_mfa"}]
    total = q["no_verified_contact"]
    chosen = rng.sample(resetting, min(total // 4, len(resetting)))
    for d in chosen:
        d["quirks"].add("no_verified_contact")
    # The rest avoid those users too, so the stranded count is exactly total // 4.
    others = ("sms_mfa", "force_change_password", "totp_mfa", "no_verified_contact")
    for d in _pick(rng, drafts, total - len(chosen), exclude=others):
        d["quirks"].add("no_verified_contact")
    for d in _pick(rng, drafts, q["bad_phone"], exclude=("sms_mfa", "no_verified_contact")):
        d["quirks"].add("bad_phone")
        a, b, c = rng.randrange(200, 1000), rng.randrange(1000), rng.randrange(10**4)
        d["phone"] = rng.choice(_BAD_PHONE_FORMATS).format(a=f"{a}", b=f"{b:03d}", c=f"{c:04d}")


def _case_variant(text: str) -> str:
    """'jane.doe42@example.com' -> 'Jane.Doe42@example.com': differs from the input only by case."""
    local, at, domain = text.partition("@")
    return ".".join(part.capitalize() for part in local.split(".")) + at + domain


def _assign_case_duplicates(rng: random.Random, drafts: list[dict[str, Any]], pairs: int) -> None:
    users = _pick(rng, drafts, 2 * pairs)
    for first, second in zip(users[::2], users[1::2], strict=True):
        second["username"] = _case_variant(first["username"])
        first["quirks"].add("case_duplicate_username")
        second["quirks"].add("case_duplicate_username")
    emails = _pick(rng, drafts, 2 * pairs, exclude=("case_duplicate_username",))
    for first, second in zip(emails[::2], emails[1::2], strict=True):
        second["email"] = _case_variant(first["email"])
        first["quirks"].add("case_duplicate_email")
        second["quirks"].add("case_duplicate_email")


def _finish(d: dict[str, Any]) -> LegacyUser:
    quirks = d["quirks"]
    unverified = "no_verified_contact" in quirks
    attrs = {"email": d["email"], "email_verified": "false" if unverified else "true"}
    if "missing_name" not in quirks:
        attrs["name"] = f"{d['given']} {d['family']}"
    attrs.update(given_name=d["given"], family_name=d["family"])
    if d["phone"] is not None:
        attrs["phone_number"] = d["phone"]
        # Cognito never verifies a number that is not E.164.
        attrs["phone_number_verified"] = "false" if unverified or "bad_phone" in quirks else "true"
    if "no_custom_attributes" not in quirks:
        attrs["custom:tier"] = d["tier"]
        attrs["custom:signup_year"] = str(d["created_at"].year)
    return LegacyUser(
        username=d["username"],
        attributes=attrs,
        status=d["status"],
        enabled=d["enabled"],
        mfa=d["mfa"],
        groups=d["groups"],
        quirks=frozenset(quirks),
        created_at=d["created_at"],
        sub=d["sub"],
    )


def has_verified_contact(user: LegacyUser) -> bool:
    return "true" in (user.attributes.get("email_verified"), user.attributes.get("phone_number_verified"))


def expected_migration(user: LegacyUser) -> bool:
    """Ground truth for a correct trigger: does a sign-in with the right password leave this user in the
    new pool? CONFIRMED and FORCE_CHANGE_PASSWORD enabled users do (MFA and FORCE_CHANGE_PASSWORD users as
    RESET_REQUIRED), unless they would be RESET_REQUIRED without a verified email or phone: the trigger
    refuses them, as they could never finish the reset. UNCONFIRMED, RESET_REQUIRED and disabled users do
    not: the old pool refuses their password sign-in."""
    if not user.enabled or user.status not in ("CONFIRMED", "FORCE_CHANGE_PASSWORD"):
        return False
    becomes_reset_required = user.mfa is not None or user.status == "FORCE_CHANGE_PASSWORD"
    return not (becomes_reset_required and not has_verified_contact(user))


def expected_migrated(
    legacy: LegacyPool, sampled_usernames_in_order: Iterable[str], case_sensitive: bool = False
) -> set[str]:
    """Usernames that end up in the new pool after these sign-ins, in this order. In a case-insensitive
    new pool, once "Jane.Doe" has migrated, "jane.doe" IS that user: only the first to sign in migrates."""
    migrated: set[str] = set()
    taken: set[str] = set()
    for username in sampled_usernames_in_order:
        key = username if case_sensitive else username.lower()
        if key not in taken and expected_migration(legacy.user(username)):
            migrated.add(username)
            taken.add(key)
    return migrated


@dataclass(frozen=True)
class LegacyPool:
    """What seed_legacy_pool created: ids for params/local.yaml and the ground-truth records."""

    pool_id: str
    region: str
    account_id: str
    migration_client_id: str
    web_client_id: str
    seed: int
    users: list[LegacyUser] = field(repr=False)

    @property
    def arn(self) -> str:
        return _pool_arn(self.region, self.account_id, self.pool_id)

    @cached_property
    def _by_username(self) -> dict[str, LegacyUser]:
        return {u.username: u for u in self.users}

    def user(self, username: str) -> LegacyUser:
        """The record of this exact (case-sensitive) username; KeyError if the pool has none."""
        try:
            return self._by_username[username]
        except KeyError:
            raise KeyError(f"no user {username!r} in legacy pool {self.pool_id}") from None

    def password(self, username: str) -> str:
        """The user's demo password; for sign-in calls only, never for output."""
        return demo_password(self.user(username).username, self.seed)

    def count_by_status(self) -> Counter[str]:
        return Counter(u.status for u in self.users)

    def count_by_quirk(self) -> Counter[str]:
        return Counter(q for u in self.users for q in u.quirks)


def _pool_arn(region: str, account_id: str, pool_id: str) -> str:
    return f"arn:aws:cognito-idp:{region}:{account_id}:userpool/{pool_id}"


def pool_config(region: str, account_id: str) -> dict[str, Any]:
    """CreateUserPool parameters of a typical legacy consumer pool (without PoolName)."""
    from moto.cognitoidp.models import CognitoIdpUserPoolAttribute

    # moto keeps only the Schema it is given, while AWS always lists every standard attribute: declare them.
    schema: list[dict[str, Any]] = [
        {"Name": n, "Required": n == "email"} for n in CognitoIdpUserPoolAttribute.STANDARD_SCHEMA
    ]
    # Bare names: moto and Cognito add "custom:" themselves ("custom:tier" would be custom:custom:tier).
    schema += [
        {
            "Name": "tier",
            "AttributeDataType": "String",
            "Mutable": True,
            "StringAttributeConstraints": {"MinLength": "1", "MaxLength": "32"},
        },
        {
            "Name": "signup_year",
            "AttributeDataType": "Number",
            "Mutable": True,
            "NumberAttributeConstraints": {"MinValue": "1990", "MaxValue": "2100"},
        },
    ]
    return {
        "UsernameConfiguration": {"CaseSensitive": True},
        "AutoVerifiedAttributes": ["email"],
        "MfaConfiguration": "OPTIONAL",
        "Policies": {
            "PasswordPolicy": {
                "MinimumLength": 8,
                "RequireUppercase": True,
                "RequireLowercase": True,
                "RequireNumbers": True,
                "RequireSymbols": True,
                "TemporaryPasswordValidityDays": 7,
            }
        },
        "Schema": schema,
        "SmsConfiguration": {
            "SnsCallerArn": f"arn:aws:iam::{account_id}:role/{LEGACY_POOL_NAME}-sms",
            "ExternalId": LEGACY_POOL_NAME,
            "SnsRegion": region,
        },
        "UserPoolTags": {"app": "legacy"},
        "DeletionProtection": "ACTIVE",
        "AccountRecoverySetting": {
            "RecoveryMechanisms": [
                {"Priority": 1, "Name": "verified_email"},
                {"Priority": 2, "Name": "verified_phone_number"},
            ]
        },
    }


def seed_legacy_pool(
    users: int = 2000,
    seed: int = 7,
    region: str = "us-east-1",
    account_id: str = DEFAULT_ACCOUNT_ID,
    records: list[LegacyUser] | None = None,
) -> LegacyPool:
    """(Re)create the legacy pool, its two clients, 12 groups and `users` users in moto's in-process
    backend (`records`, when given, are generate_users(users, seed) made earlier). Idempotent: an existing
    pool with the fixed id is replaced."""
    from moto.cognitoidp.models import cognitoidp_backends

    records = generate_users(users, seed) if records is None else records
    backend = cognitoidp_backends[account_id][region]
    pool_id = legacy_pool_id(region)
    _drop_pool(backend, pool_id)
    pool = backend.create_user_pool(LEGACY_POOL_NAME, pool_config(region, account_id))
    # Re-key to the fixed id: moto generates a random one.
    del backend.user_pools[pool.id]
    install_as_legacy(backend, pool, pool_id)
    # A typical app signs in with SRP, which never reaches a migration trigger: the audit must say so.
    _add_client(backend, pool, LEGACY_WEB_CLIENT_ID, "legacy-web", ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"])
    _add_client(
        backend,
        pool,
        LEGACY_MIGRATION_CLIENT_ID,
        "legacy-migration",
        ["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )
    groups = {group.group_name: group for group in install_groups(backend, pool_id)}
    from moto.cognitoidp.models import CognitoIdpUser

    template = CognitoIdpUser(pool_id, None, None, "CONFIRMED", [])
    for record in records:
        _insert_user(pool, groups, record, seed, template)
    return LegacyPool(pool_id, region, account_id, LEGACY_MIGRATION_CLIENT_ID, LEGACY_WEB_CLIENT_ID, seed, records)


def install_as_legacy(backend: Any, pool: Any, pool_id: str) -> None:
    """Put moto's ``pool`` (made with pool_config) in the backend as ``pool_id``, with what an old pool has that
    no request can set today."""
    pool.id, pool.arn = pool_id, _pool_arn(pool.region, pool.account_id, pool_id)
    backend.user_pools[pool_id] = pool
    # An old pool: made before PasswordPolicy.TemporaryPasswordValidityDays existed, AWS still describes its
    # AdminCreateUserConfig.UnusedAccountValidityDays beside it. No request may set both today (pool_rules),
    # so the field is written into the backend, and every read-modify-write of the runbook meets it.
    pool.extended_config["AdminCreateUserConfig"] = {
        **(pool.extended_config.get("AdminCreateUserConfig") or {}),
        "UnusedAccountValidityDays": UNUSED_ACCOUNT_VALIDITY_DAYS,
    }
    pool.sms_mfa_config = {
        "SmsAuthenticationMessage": "Your code is {####}",
        "SmsConfiguration": pool.extended_config["SmsConfiguration"],
    }
    pool.token_mfa_config = {"Enabled": True}


def install_groups(backend: Any, pool_id: str) -> list[Any]:
    """The legacy pool's 12 groups (GROUPS), in moto's backend."""
    return [
        # No role: None, as moto's own handler passes for a request without RoleArn (moto annotates it str).
        backend.create_group(pool_id, name, description, None, precedence)
        for name, description, precedence in GROUPS
    ]


def _drop_pool(backend: Any, pool_id: str) -> None:
    # Straight from the backend: DeletionProtection is ACTIVE, and a reseed must not depend on the API.
    backend.user_pools.pop(pool_id, None)
    for domain in [d for d, v in backend.user_pool_domains.items() if v.user_pool_id == pool_id]:
        del backend.user_pool_domains[domain]


def _add_client(backend: Any, pool: Any, client_id: str, name: str, flows: list[str]) -> None:
    client = backend.create_user_pool_client(
        pool.id,
        False,
        {
            "ClientName": name,
            "ExplicitAuthFlows": flows,
            "PreventUserExistenceErrors": "ENABLED",
            "ReadAttributes": [
                "email",
                "email_verified",
                "name",
                "given_name",
                "family_name",
                "phone_number",
                "phone_number_verified",
                "custom:tier",
                "custom:signup_year",
            ],
        },
    )
    del pool.clients[client.id]
    client.id = client_id
    pool.clients[client_id] = client


def _insert_user(pool: Any, groups: dict[str, Any], record: LegacyUser, seed: int, template: Any) -> None:
    """One user, as moto's CognitoIdpUser would hold it, copied from a `template` made by moto itself: its
    constructor draws a uuid and rebuilds the attributes twice, which made seeding a million users take minutes."""
    from moto.cognitoidp.models import UserStatus

    user = copy.copy(template)
    # A stable sub (moto draws a random one) keeps reseeds comparable, e.g. for custom:legacy_sub checks.
    user.id = record.sub
    user.username = record.username
    user.password = demo_password(record.username, seed)
    user.status = UserStatus(record.status)
    user.attribute_lookup = {**record.attributes, "sub": record.sub}  # moto's order: sub comes last
    user.attributes = [{"Name": k, "Value": v} for k, v in user.attribute_lookup.items()]
    user.enabled = record.enabled
    user.sms_mfa_enabled = record.mfa == "SMS_MFA"
    user.software_token_mfa_enabled = record.mfa == "SOFTWARE_TOKEN_MFA"
    user.preferred_mfa_setting = record.mfa
    # moto keeps naive UTC datetimes.
    user.create_date = user.last_modified_date = record.created_at.replace(tzinfo=None)
    user.groups = set()
    pool.users[record.username] = user
    for name in record.groups:
        groups[name].users.add(user)
        user.groups.add(groups[name])


@dataclass(frozen=True)
class ReplayResult:
    """Outcome per username, in sign-in order: "tokens", a challenge name, or the error code."""

    outcomes: dict[str, str]

    @property
    def counts(self) -> Counter[str]:
        return Counter(self.outcomes.values())


def replay_sample(legacy: LegacyPool, share: float) -> list[str]:
    """The usernames a wave signs in, in order: round(share * N) of the sorted usernames, drawn by
    random.Random(legacy.seed), so tests can recompute it."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share must be between 0 and 1, got {share}")
    names = sorted(u.username for u in legacy.users)
    return random.Random(legacy.seed).sample(names, round(share * len(names)))


REPLAY_CONCURRENCY = 4  # returning users sign in at once, as they do in AWS


REPLAY_TRIES = 3  # a returning user told "try again later" tries twice more


def replay_wave(
    legacy: LegacyPool,
    new_client_id: str,
    share: float = 0.3,
    endpoint_url: str | None = None,
    *,
    progress: bool = False,
    client: Any = None,
    concurrency: int = REPLAY_CONCURRENCY,
) -> ReplayResult:
    """Sign a sample of the legacy users in to the NEW pool (InitiateAuth USER_PASSWORD_AUTH, their old
    username and password) as returning users would, `concurrency` at a time. Usernames that differ only by
    case share a lane and sign in in sample order, so which of them migrates first does not depend on timing.
    The new client must have no secret."""
    from concurrent.futures import ThreadPoolExecutor

    from botocore.exceptions import ClientError
    from tqdm.auto import tqdm

    from ..trigger.migration_trigger import UNAVAILABLE

    cognito = client or _cognito_client(legacy.region, endpoint_url)
    sample = replay_sample(legacy, share)
    lanes: list[list[str]] = [[] for _ in range(max(1, concurrency))]
    for username in sample:
        lanes[zlib.crc32(username.casefold().encode()) % len(lanes)].append(username)
    bar = tqdm(total=len(sample), desc="sign-ins", unit="user", disable=not progress)

    def sign_in(username: str) -> str:
        try:
            for attempt in range(1, REPLAY_TRIES + 1):
                try:
                    response = cognito.initiate_auth(
                        ClientId=new_client_id,
                        AuthFlow="USER_PASSWORD_AUTH",
                        AuthParameters={"USERNAME": username, "PASSWORD": legacy.password(username)},
                    )
                except ClientError as exc:
                    # Told to try again later (the trigger failed closed: a slow old pool, a busy machine), a
                    # person does; any other answer is final.
                    if UNAVAILABLE in exc.response["Error"].get("Message", "") and attempt < REPLAY_TRIES:
                        time.sleep(0.5 * attempt)
                        continue
                    return str(exc.response["Error"]["Code"])
                return "tokens" if "AuthenticationResult" in response else str(response["ChallengeName"])
            raise AssertionError("unreachable")
        finally:
            bar.update(1)

    def run_lane(lane: list[str]) -> dict[str, str]:
        return {username: sign_in(username) for username in lane}

    with bar, ThreadPoolExecutor(len(lanes)) as pool:
        done = {username: outcome for lane in pool.map(run_lane, lanes) for username, outcome in lane.items()}
    return ReplayResult({username: done[username] for username in sample})


def _cognito_client(region: str, endpoint_url: str | None) -> Any:
    import boto3
    from botocore.config import Config

    # Dummy credentials: InitiateAuth is unauthenticated on AWS, and moto accepts any key.
    return boto3.client(
        "cognito-idp",
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        aws_session_token="testing",
        config=Config(retries={"mode": "standard"}),
    )
