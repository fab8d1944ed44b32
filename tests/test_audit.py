"""Step 1, the audit, against the local AWS over HTTP: a legacy pool carrying every quirk yields each finding
with its exact count (ground truth: the generator's records plus what this module adds), a clean pool yields
no blocker and no warning, records are masked, the gate fails until blockers are accepted by name, and the
request-rate budget holds as measured at the server."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest

from cognito_migration import audit, aws, checks, findings, pool_findings
from cognito_migration.local.legacy import LegacyPool, seed_legacy_pool
from cognito_migration.local.server import LocalAWS
from cognito_migration.params import ParameterError, Params, validate

REGION = "eu-west-1"  # a Region of its own: other tests reseed the legacy pool in us-east-1
USERS, SEED = 400, 11
FEDERATED = "Google_104478592251"
LONG_TIER, LONG_GIVEN_NAME = "x" * 40, "y" * 2049  # custom:tier allows 32 characters, standard strings 2048
E164 = re.compile(r"^\+[1-9]\d{1,14}$")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def audit_params(pool_id: str, client_id: str, region: str = REGION, **overrides: Any) -> Params:
    return validate(
        {
            "region": region,
            "old_user_pool_id": pool_id,
            "old_client_id": client_id,
            "new_pool_name": unique("users-v2"),
            "target_required_attributes": ["email", "name"],
            "attribute_defaults": {"name": "Unknown"},
            "list_rate_limit": 30,
            **overrides,
        }
    )


@dataclasses.dataclass
class Quirky:
    """The seeded pool, what this module added to it, and the audit of the result."""

    legacy: LegacyPool
    attributes: dict[str, dict[str, str]]  # every user's attributes as the pool now holds them
    extra: dict[str, list[str]]  # quirk -> usernames this module gave it
    params: Params
    result: audit.Audit

    def found(self, kind_id: str) -> findings.Finding:
        (hit,) = [f for f in self.result.findings if f.id == kind_id]
        return hit

    def absent(self, kind_id: str) -> bool:
        return not [f for f in self.result.findings if f.id == kind_id]


def plain_users(legacy: LegacyPool, count: int) -> list[str]:
    """Users with no quirk that matters here: confirmed, enabled, verified, well-formed."""
    plain = [
        u.username
        for u in legacy.users
        if u.status == "CONFIRMED" and u.enabled and not u.quirks - {"multi_group", "no_custom_attributes"}
    ]
    return plain[:count]


def add_federated_user(pool_id: str) -> dict[str, str]:
    """A user created by a federated sign-in: status EXTERNAL_PROVIDER and an `identities` attribute. No API
    creates one (Cognito does, on the first federated sign-in), so it goes into moto's backend directly."""
    from moto.cognitoidp.models import CognitoIdpUser, UserStatus, cognitoidp_backends

    attributes = {
        "email": "fed.user@example.com",
        "email_verified": "true",
        "name": "Fed User",
        "identities": json.dumps([{"providerName": "Google", "providerType": "Google", "userId": "104478592251"}]),
    }
    pool = cognitoidp_backends["123456789012"][REGION].user_pools[pool_id]
    user = CognitoIdpUser(
        pool_id, FEDERATED, None, UserStatus.CONFIRMED, [{"Name": k, "Value": v} for k, v in attributes.items()]
    )
    user.status = "EXTERNAL_PROVIDER"
    pool.users[FEDERATED] = user
    return attributes


def set_lambda_trigger(pool_id: str) -> None:
    from moto.cognitoidp.models import cognitoidp_backends

    pool = cognitoidp_backends["123456789012"][REGION].user_pools[pool_id]
    pool.extended_config["LambdaConfig"] = {
        "PreTokenGeneration": f"arn:aws:lambda:{REGION}:123456789012:function:legacy-claims"
    }


@pytest.fixture(scope="module")
def regional(local_aws: LocalAWS) -> Any:
    return boto3.client("cognito-idp", region_name=REGION, endpoint_url=local_aws.endpoint_url)


@pytest.fixture(scope="module")
def quirky(regional: Any) -> Quirky:
    legacy = seed_legacy_pool(users=USERS, seed=SEED, region=REGION)
    pool_id = legacy.pool_id
    attributes = {u.username: dict(u.attributes) for u in legacy.users}
    picked = plain_users(legacy, 11)
    updates = {
        # preferred_username colliding by case: one group of three, one of two, one unique
        picked[0]: {"preferred_username": "Sam.Wise"},
        picked[1]: {"preferred_username": "sam.wise"},
        picked[2]: {"preferred_username": "SAM.WISE"},
        picked[3]: {"preferred_username": "kit"},
        picked[4]: {"preferred_username": "Kit"},
        picked[5]: {"preferred_username": "solo", "custom:tier": LONG_TIER},
        picked[6]: {"given_name": LONG_GIVEN_NAME},
        picked[7]: {"custom:signup_year": "n/a"},
        picked[8]: {"custom:signup_year": "1900"},  # below the schema's MinValue 1990
        # one phone number verified on two users
        picked[9]: {"phone_number": "+15550000001", "phone_number_verified": "true"},
        picked[10]: {"phone_number": "+15550000001", "phone_number_verified": "true"},
    }
    for username, changes in updates.items():
        regional.admin_update_user_attributes(
            UserPoolId=pool_id, Username=username, UserAttributes=[{"Name": k, "Value": v} for k, v in changes.items()]
        )
        attributes[username].update(changes)
    attributes[FEDERATED] = add_federated_user(pool_id)
    set_lambda_trigger(pool_id)
    regional.create_identity_provider(
        UserPoolId=pool_id,
        ProviderName="Google",
        ProviderType="Google",
        ProviderDetails={"client_id": "abc", "client_secret": "not-a-real-one", "authorize_scopes": "email"},
    )
    regional.create_resource_server(
        UserPoolId=pool_id,
        Identifier="https://api.example.com",
        Name="api",
        Scopes=[{"ScopeName": "read", "ScopeDescription": "read"}],
    )
    regional.create_user_pool_domain(Domain=unique("legacy-login"), UserPoolId=pool_id)
    regional.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="mobile",
        GenerateSecret=True,
        PreventUserExistenceErrors="LEGACY",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )
    params = audit_params(pool_id, legacy.migration_client_id)
    extra = {
        "too_long": [picked[5], picked[6]],
        "bad_number": [picked[7], picked[8]],
        "preferred_username": picked[:6],
        "federated": [FEDERATED],
    }
    return Quirky(legacy, attributes, extra, params, audit.run_audit(regional, params, aws.RateLimiter(30)))


def verified(attrs: dict[str, str], contact: str) -> bool:
    return bool(attrs.get(contact)) and attrs.get(f"{contact}_verified") == "true"


def groups_of(values: dict[str, str], key: Any = str.casefold, spelled_differently: bool = True) -> list[set[str]]:
    """Usernames grouped by key(value), groups of two or more (with different spellings if asked)."""
    by_key: dict[str, set[str]] = defaultdict(set)
    for username, value in values.items():
        by_key[key(value)].add(username)
    return [
        users
        for users in by_key.values()
        if len(users) > 1 and (not spelled_differently or len({values[u] for u in users}) > 1)
    ]


# --- the legacy pool: each finding, its exact count -----------------------------------------------------------


def test_username_case_collisions_list_every_group_masked(quirky: Quirky) -> None:
    expected = {u.username for u in quirky.legacy.users if "case_duplicate_username" in u.quirks}
    found = quirky.found("username_case_collisions")
    assert (found.severity, found.count) == ("blocker", len(expected))
    assert len(found.groups) == len(expected) // 2
    listed = {name for group in found.groups for name in group}
    assert listed == {quirky.params.masker().text(name) for name in expected}


def test_email_and_preferred_username_case_collisions(quirky: Quirky) -> None:
    emails = {u: a["email"] for u, a in quirky.attributes.items() if a.get("email")}
    email_groups = groups_of(emails)
    expected = {u.username for u in quirky.legacy.users if "case_duplicate_email" in u.quirks}
    assert set().union(*email_groups) == expected  # the records agree with the pool
    found = quirky.found("email_case_collisions")
    assert (found.severity, found.count, len(found.groups)) == ("warning", len(expected), len(email_groups))

    preferred = quirky.found("preferred_username_case_collisions")
    assert (preferred.count, len(preferred.groups)) == (5, 2)  # Sam.Wise x3, kit x2; "solo" is alone
    assert sorted(len(g) for g in preferred.groups) == [2, 3]
    assert not any("Sam" in entry or "kit" in entry for group in preferred.groups for entry in group)


def test_alias_conflicts_count_verified_holders_only(quirky: Quirky) -> None:
    emails = {u: a["email"] for u, a in quirky.attributes.items() if verified(a, "email")}
    phones = {u: a["phone_number"] for u, a in quirky.attributes.items() if verified(a, "phone_number")}
    by_email = groups_of(emails, spelled_differently=False)
    by_phone = groups_of(phones, key=lambda v: v, spelled_differently=False)
    found = quirky.found("alias_conflicts")
    assert found.facts == {"email": sum(map(len, by_email)), "phone_number": sum(map(len, by_phone))}
    assert found.count == sum(map(len, by_email + by_phone)) and len(found.groups) == len(by_email + by_phone)
    assert found.severity == "info"  # the legacy pool signs in by username: nobody is blocked


def test_values_the_new_schema_rejects_after_the_trigger_mapping(quirky: Quirky) -> None:
    bad_phones = [u.username for u in quirky.legacy.users if "bad_phone" in u.quirks]
    assert bad_phones and all(not E164.match(quirky.attributes[u]["phone_number"]) for u in bad_phones)
    assert quirky.found("invalid_phone_numbers").count == len(bad_phones)
    too_long = quirky.found("values_too_long")
    assert too_long.count == len(quirky.extra["too_long"]) and too_long.facts == {"custom:tier": 1, "given_name": 1}
    mismatch = quirky.found("custom_attribute_type_mismatch")
    assert mismatch.count == len(quirky.extra["bad_number"]) and mismatch.facts == {"custom:signup_year": 2}
    assert quirky.absent("missing_required_attributes")  # attribute_defaults fills `name`
    assert not any(LONG_TIER in e or "+1555" in e for f in quirky.result.findings for e in f.examples)


def test_required_attributes_missing_without_a_default(quirky: Quirky, regional: Any) -> None:
    params = dataclasses.replace(quirky.params, attribute_defaults={})
    result = dataclasses.replace(quirky.result, target=audit.create_pool_input(regional, quirky.result.pool, params))
    found = {f.id: f for f in audit.assess(result, params)}
    without_name = [u for u, a in quirky.attributes.items() if not a.get("name")]
    assert len(without_name) == quirky.legacy.count_by_quirk()["missing_name"]
    missing = found["missing_required_attributes"]
    assert (missing.severity, missing.count, missing.facts) == (
        "blocker",
        len(without_name),
        {"name": len(without_name)},
    )


def test_users_who_cannot_migrate_lazily_or_need_a_decision(quirky: Quirky) -> None:
    users = quirky.legacy.users
    by_status = Counter(u.status for u in users)
    expected = {
        "unconfirmed_users": by_status["UNCONFIRMED"],
        "force_change_password_users": by_status["FORCE_CHANGE_PASSWORD"],
        "reset_required_users": by_status["RESET_REQUIRED"],
        "disabled_users": sum(not u.enabled for u in users),
        "federated_users": len(quirky.extra["federated"]),
        "no_verified_contact": sum(
            not (verified(a, "email") or verified(a, "phone_number")) for a in quirky.attributes.values()
        ),
    }
    assert {kind_id: quirky.found(kind_id).count for kind_id in expected} == expected
    assert quirky.found("federated_users").examples == (quirky.params.masker().text(FEDERATED),)


def test_mfa_users_count_what_list_users_shows(quirky: Quirky) -> None:
    found = quirky.found("mfa_users")
    phones = sum(verified(a, "phone_number") for a in quirky.attributes.values())
    assert found.count == len(quirky.attributes)  # MfaConfiguration OPTIONAL: any user may have MFA
    assert found.facts == {"mfa_configuration": "OPTIONAL", "legacy_sms_mfa_options": 0, "verified_phones": phones}
    assert "ListUsers does not return per-user MFA settings" in found.detail
    assert "mfa_policy reset_required" in found.detail


def test_app_clients(quirky: Quirky) -> None:
    no_password = quirky.found("clients_without_password_flow")
    assert (no_password.severity, no_password.count) == ("blocker", 1)
    assert "legacy-web" in no_password.examples[0] and "NEVER FIRES UNDER SRP" in no_password.detail
    assert quirky.found("client_secrets").count == 1 and "mobile" in quirky.found("client_secrets").examples[0]
    assert quirky.found("prevent_user_existence_errors").count == 1
    assert quirky.absent("migration_client")


def test_the_legacy_pools_password_client_answers_a_required_reset_plainly(quirky: Quirky) -> None:
    found = quirky.found("reset_required_sign_in")
    arriving = sum(u.status in ("FORCE_CHANGE_PASSWORD", "RESET_REQUIRED") for u in quirky.legacy.users)
    # mobile is LEGACY (legacy-web has no password flow, the migration client is the trigger's): info.
    assert (found.severity, found.count, found.facts["clients_legacy"]) == ("info", 1, 1)
    assert found.facts["arriving"] == arriving > 0
    assert "mobile" in found.examples[0] and "LEGACY" in found.examples[0]


def password_client(name: str, setting: str | None) -> dict[str, Any]:
    client = {"ClientId": f"{name}-id", "ClientName": name, "ExplicitAuthFlows": ["ALLOW_USER_PASSWORD_AUTH"]}
    return client | ({"PreventUserExistenceErrors": setting} if setting else {})


@pytest.mark.parametrize(
    ("arriving", "pool_mfa", "mfa_policy", "severity"),
    [
        (3, "OFF", "reset_required", "warning"),  # FORCE_CHANGE_PASSWORD / RESET_REQUIRED users
        (0, "OPTIONAL", "reset_required", "warning"),  # MFA users migrate RESET_REQUIRED
        (0, "OPTIONAL", "sms", "info"),  # only the stragglers, imported at cutover
        (0, "OFF", "reset_required", "info"),
    ],
)
def test_an_enabled_client_hides_a_required_reset_and_the_audit_says_what_apps_must_do(
    arriving: int, pool_mfa: str, mfa_policy: str, severity: str
) -> None:
    params = dataclasses.replace(audit_params(f"{REGION}_Old", "migration-id"), mfa_policy=mfa_policy)
    clients = [
        password_client("web", "ENABLED"),
        password_client("mobile", None),  # LEGACY by default
        {
            "ClientId": "migration-id",
            "ClientName": "migration",
            "ExplicitAuthFlows": ["ALLOW_ADMIN_USER_PASSWORD_AUTH"],
        },
        {"ClientId": "srp-id", "ClientName": "srp", "ExplicitAuthFlows": ["ALLOW_USER_SRP_AUTH"]},
    ]

    found = pool_findings.reset_required_finding(clients, params, arriving, pool_mfa)

    assert found is not None and (found.id, found.severity, found.count) == ("reset_required_sign_in", severity, 2)
    assert found.examples == ("web (web-id): ENABLED", "mobile (mobile-id): LEGACY")
    assert "NotAuthorizedException" in found.detail and "PasswordResetRequiredException" in found.detail
    assert "forgot-password" in found.remedy and "NotAuthorizedException" in found.remedy
    assert ("mfa_policy reset_required" in found.detail) == (mfa_policy == "reset_required" and pool_mfa != "OFF")


def test_no_password_client_no_reset_required_sign_in_finding() -> None:
    params = audit_params(f"{REGION}_Old", "migration-id")
    srp = {"ClientId": "srp-id", "ClientName": "srp", "ExplicitAuthFlows": ["ALLOW_USER_SRP_AUTH"]}
    assert pool_findings.reset_required_finding([srp], params, 5, "ON") is None


def test_what_the_new_pool_must_carry(quirky: Quirky) -> None:
    severities = {
        kind_id: (quirky.found(kind_id).severity, quirky.found(kind_id).count)
        for kind_id in ("lambda_triggers", "identity_providers", "resource_servers", "domain")
    }
    assert severities == {
        "lambda_triggers": ("warning", 1),  # carry_triggers does not name it
        "identity_providers": ("warning", 1),  # its secret must be supplied to step 2
        "resource_servers": ("info", 1),  # step 2 recreates it
        "domain": ("warning", 1),  # new_domain_prefix is not set
    }
    assert quirky.found("lambda_triggers").examples == ("PreTokenGeneration",)
    mfa = quirky.found("mfa_configuration")
    assert mfa.severity == "info" and "OPTIONAL, SMS factor on, TOTP factor on; new pool: OPTIONAL" in mfa.detail
    assert quirky.found("email_configuration").severity == "warning"  # Cognito's sender, more than 50 users
    assert quirky.found("sms_configuration").severity == "info"
    assert quirky.found("deletion_protection").severity == "info"  # ACTIVE, and step 2 copies it
    assert "not-a-real-one" not in json.dumps(findings.to_records(quirky.result.findings))

    carried = dataclasses.replace(quirky.params, carry_triggers=("PreTokenGeneration",), new_domain_prefix="users-v2")
    found = {f.id: f for f in audit.assess(quirky.result, carried)}
    assert found["lambda_triggers"].severity == found["domain"].severity == "info"


def test_sub_change_and_the_time_a_scan_and_the_window_take(quirky: Quirky) -> None:
    sub = quirky.found("sub_changes")
    assert (sub.severity, sub.count) == ("warning", len(quirky.attributes)) and "legacy_sub_attribute" in sub.detail
    members = Counter(group for u in quirky.legacy.users for group in u.groups)
    group_pages = sum(max(1, math.ceil(members[g["GroupName"]] / 60)) for g in quirky.result.groups)
    scan = quirky.found("full_scan_time")
    assert scan.facts["requests"] == math.ceil(len(quirky.attributes) / 60) + group_pages
    assert scan.facts["seconds_at_quota"] == pytest.approx(scan.facts["requests"] / 30)
    assert "1,800 users/s" in scan.detail
    window = quirky.found("lazy_window_time")
    assert window.count == len(quirky.attributes) and window.facts == {"migrations_per_s": 60}


def test_migration_client_empty_pool_and_a_refused_trigger_configuration(quirky: Quirky) -> None:
    web_client = dataclasses.replace(quirky.params, old_client_id=quirky.legacy.web_client_id)
    found = {f.id: f for f in audit.assess(quirky.result, web_client)}
    assert found["migration_client"].severity == "blocker" and "ALLOW_USER_SRP_AUTH" in found["migration_client"].detail

    empty = dataclasses.replace(quirky.result, users=quirky.result.users.iloc[0:0])
    found = {f.id: f for f in audit.assess(empty, quirky.params)}
    assert found["empty_pool"].severity == "blocker"
    assert not {"username_case_collisions", "alias_conflicts", "unconfirmed_users", "mfa_users"} & set(found)

    # A new pool without the custom attribute the trigger is told to fill: the trigger refuses the configuration.
    carrying = dataclasses.replace(quirky.params, legacy_sub_attribute="custom:legacy_sub")
    schema = [a for a in quirky.result.target["Schema"] if a["Name"] != "legacy_sub"]
    lacking = dataclasses.replace(quirky.result, target={**quirky.result.target, "Schema": schema})
    found = {f.id: f for f in audit.assess(lacking, carrying)}
    assert (
        found["trigger_configuration"].severity == "blocker"
        and "custom:legacy_sub" in found["trigger_configuration"].detail
    )


def test_an_attribute_map_target_the_new_schema_lacks_names_the_parameter(quirky: Quirky) -> None:
    mapped = dataclasses.replace(quirky.params, attribute_map={"custom:plan": "custom:tier"})
    found = {f.id: f for f in audit.assess(quirky.result, mapped)}

    detail = found["trigger_configuration"].detail
    assert detail.startswith("attribute_map sets custom:plan, which the new pool's schema will not have")
    assert "target_custom_attributes ({plan: String})" in detail and "remove it from attribute_map" in detail
    assert "None" not in detail and "ATTRIBUTE_MAP" not in detail


def test_an_attribute_map_source_no_old_user_has_is_a_warning(quirky: Quirky) -> None:
    mapped = dataclasses.replace(
        quirky.params, attribute_map={"nickname": ["preferred_usernme", "given_name"], "name": "given_name"}
    )
    found = {f.id: f for f in audit.assess(quirky.result, mapped)}

    unused = found["attribute_map_unused_source"]
    assert (unused.severity, unused.count) == ("warning", len(quirky.attributes))
    assert unused.facts == {"nickname": ["preferred_usernme"]}  # given_name is held by old users
    assert "attribute_map nickname: preferred_usernme" in unused.detail
    assert quirky.absent("attribute_map_unused_source")


def refusable(users: pd.DataFrame) -> pd.Series:
    """Users who could migrate lazily before anyone has: enabled, confirmed or resettable, not federated, and
    a temporary password only with a verified contact (step 5's reasons, read off the frame directly)."""
    contact = pd.Series(False, index=users.index)
    for column in ("email", "phone_number"):
        contact |= users[column].notna() & (users[f"{column}_verified"] == "true")
    status = users["status"]
    return (
        users["enabled"].astype(bool)
        & ~status.isin(["UNCONFIRMED", "EXTERNAL_PROVIDER"])
        & ~((status == "FORCE_CHANGE_PASSWORD") & ~contact)
    )


def test_mfa_users_refuse_refuses_are_predicted_as_the_report_counts_them(quirky: Quirky) -> None:
    refusing = dataclasses.replace(quirky.params, mfa_policy="refuse")
    on = dataclasses.replace(quirky.result, pool={**quirky.result.pool, "MfaConfiguration": "ON"})
    found = {f.id: f for f in audit.assess(on, refusing)}
    # MFA ON and refuse: nobody could move at all, lazily or by import: the audit stops there
    assert (found["mfa_refused_users"].severity, found["mfa_refused_users"].count) == (
        "blocker",
        int(refusable(quirky.result.users).sum()),
    )
    assert "refuses all" in found["mfa_refused_users"].detail

    users = quirky.result.users.copy()
    sms = users.index[refusable(users)][:3]
    users["legacy_sms_mfa"] = users.index.isin(sms)
    optional = dataclasses.replace(quirky.result, users=users)
    found = {f.id: f for f in audit.assess(optional, refusing)}
    assert found["mfa_refused_users"].count == 3 and "invisible to ListUsers" in found["mfa_refused_users"].detail
    assert found["mfa_refused_users"].severity == "warning"
    assert "mfa_refused_users" not in {f.id for f in audit.assess(optional, quirky.params)}  # reset_required


def test_attributes_the_new_schema_lacks_are_reported_dropped(quirky: Quirky) -> None:
    schema = [a for a in quirky.result.target["Schema"] if a["Name"] != "tier"]
    without_tier = dataclasses.replace(quirky.result, target={**quirky.result.target, "Schema": schema})
    found = {f.id: f for f in audit.assess(without_tier, quirky.params)}
    holders = sum(bool(a.get("custom:tier")) for a in quirky.attributes.values())
    assert (found["attributes_dropped"].count, found["attributes_dropped"].facts) == (holders, {"custom:tier": holders})
    assert "values_too_long" in found and found["values_too_long"].facts == {"given_name": 1}  # tier is not sent


# --- tables, records and the gate ---------------------------------------------------------------------------


def test_fixed_settings_cover_seed_001_and_highlight_what_differs(quirky: Quirky) -> None:
    frame = audit.fixed_settings(quirky.result)
    assert list(frame["setting"]) == [
        "PoolName",
        "UsernameAttributes",
        "AliasAttributes",
        "UsernameConfiguration.CaseSensitive",
        "Schema: required attributes",
        "Schema: custom attributes",
        "App client secrets (GenerateSecret)",
        "SMS configuration activated",
    ]
    rows = frame.set_index("setting")
    differs = set(frame.loc[frame["differs"], "setting"])
    assert {
        "PoolName",
        "UsernameConfiguration.CaseSensitive",  # the reason for this new pool: True -> False
        "Schema: required attributes",  # email -> email, name
        "App client secrets (GenerateSecret)",  # mobile's secret: the new pool gives it a new one
    } <= differs
    assert not {"UsernameAttributes", "AliasAttributes", "SMS configuration activated"} & differs
    for custom in ("custom:tier (String)", "custom:signup_year (Number)"):  # custom attributes cannot be dropped
        assert custom in rows.at["Schema: custom attributes", "old pool"]
        assert custom in rows.at["Schema: custom attributes", "new pool"]
    css = audit.style_fixed_settings(frame).to_html().split("</style>")[0]
    assert css.count("background-color: #fff3cd") == 1  # one rule, for the cells of the differing rows
    highlighted = {int(row) for row in re.findall(r"_row(\d+)_col\d+", css)}
    assert highlighted == set(frame.index[frame["differs"]])


def test_findings_table_puts_blockers_first(quirky: Quirky) -> None:
    table = findings.table(quirky.result.findings, ["username_case_collisions"])
    order = {"blocker": 0, "warning": 1, "info": 2}
    assert list(table["severity"].map(order)) == sorted(table["severity"].map(order))
    assert table.loc[table["accepted"], "id"].tolist() == ["username_case_collisions"]
    assert set(table["id"]) <= set(findings.FINDING_IDS)


def test_gate_fails_until_blockers_are_accepted_by_name(quirky: Quirky) -> None:
    blockers = sorted(f.id for f in quirky.result.blockers)
    assert blockers == [
        "clients_without_password_flow",
        "custom_attribute_type_mismatch",
        "invalid_phone_numbers",
        "username_case_collisions",
        "values_too_long",
    ]
    with pytest.raises(checks.GateFailed) as failed:
        checks.gate(audit.gate_checks(quirky.result, quirky.params), "audit")
    message = str(failed.value)
    assert all(f"- {kind_id}:" in message and f"add {kind_id} to accept_findings" in message for kind_id in blockers)

    some = dataclasses.replace(quirky.params, accept_findings=tuple(blockers[:-1]))
    with pytest.raises(checks.GateFailed) as still:
        checks.gate(audit.gate_checks(quirky.result, some), "audit")
    assert "1 blocker(s)" in str(still.value) and blockers[-1] in str(still.value)

    accepted = validate({**dataclasses.asdict(quirky.params), "accept_findings": blockers})
    checks.gate(audit.gate_checks(quirky.result, accepted), "audit")  # no raise


def test_accept_findings_names_known_findings_only(quirky: Quirky) -> None:
    with pytest.raises(ParameterError, match=r"^accept_findings: unknown finding id\(s\) username_collisions"):
        validate({**dataclasses.asdict(quirky.params), "accept_findings": ["username_collisions"]})
    with pytest.raises(ParameterError, match=r"^accept_findings: expected a list"):
        validate({**dataclasses.asdict(quirky.params), "accept_findings": "domain"})


def test_records_are_masked_and_complete(quirky: Quirky, tmp_path: Path) -> None:
    params = dataclasses.replace(quirky.params, run_dir=str(tmp_path))
    audit.save_records(quirky.result, params)
    saved = json.loads((tmp_path / "findings.json").read_text())
    assert [f["id"] for f in saved] == [f.id for f in quirky.result.findings]
    assert all(f["remedy"] and f["what"] for f in saved)
    users = pd.read_parquet(tmp_path / "old_users.parquet")
    memberships = pd.read_parquet(tmp_path / "old_memberships.parquet")
    assert len(users) == len(quirky.attributes) and "sub" not in users.columns
    assert len(memberships) == sum(len(u.groups) for u in quirky.legacy.users)
    masked = params.masker().text
    assert set(memberships["username"]) == {masked(u.username) for u in quirky.legacy.users if u.groups}
    written = "".join(p.read_text(errors="replace") for p in tmp_path.glob("*.json")) + users.to_csv()
    written += memberships.to_csv()
    for username, attrs in quirky.attributes.items():
        assert username not in written and attrs["email"] not in written
    assert json.loads((tmp_path / "audit.json").read_text())["findings"]["username_case_collisions"]["count"] > 0


def test_a_new_pool_without_an_auto_verified_attribute_is_a_blocker_with_its_consequences() -> None:
    from cognito_migration import pool_findings

    old = {"AutoVerifiedAttributes": ["email"]}
    found = pool_findings.auto_verified_finding(old, {"AutoVerifiedAttributes": []}, 1200)

    assert found is not None and (found.id, found.severity, found.count) == (
        "no_auto_verified_attribute",
        "blocker",
        1200,
    )
    for consequence in ("forgot-password code", "RESET_REQUIRED migrations cannot finish", "no user import job"):
        assert consequence in found.detail
    assert pool_findings.auto_verified_finding(old, {"AutoVerifiedAttributes": ["phone_number"]}, 1200) is None


# --- a clean pool --------------------------------------------------------------------------------------------


def test_a_clean_pool_has_no_blocker_and_no_warning(regional: Any) -> None:
    pool_id = regional.create_user_pool(
        PoolName=unique("clean"),
        UsernameConfiguration={"CaseSensitive": False},
        MfaConfiguration="OFF",
        DeletionProtection="ACTIVE",
        AutoVerifiedAttributes=["email"],
        Schema=[
            {"Name": "email", "AttributeDataType": "String", "Required": True, "Mutable": True},
            {"Name": "name", "AttributeDataType": "String", "Required": True, "Mutable": True},
        ],
    )["UserPool"]["Id"]
    migration = regional.create_user_pool_client(
        UserPoolId=pool_id, ClientName="migration", ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    regional.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="app",
        PreventUserExistenceErrors="ENABLED",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )
    regional.create_group(UserPoolId=pool_id, GroupName="members")
    for i in range(5):
        username = f"user{i}"
        regional.admin_create_user(
            UserPoolId=pool_id,
            Username=username,
            MessageAction="SUPPRESS",
            UserAttributes=[
                {"Name": "email", "Value": f"user{i}@example.com"},
                {"Name": "email_verified", "Value": "true"},
                {"Name": "name", "Value": f"User {i}"},
            ],
        )
        regional.admin_set_user_password(
            UserPoolId=pool_id, Username=username, Password="Clean-Pass-123!", Permanent=True
        )
        regional.admin_add_user_to_group(UserPoolId=pool_id, Username=username, GroupName="members")
    params = audit_params(pool_id, migration, attribute_defaults={}, legacy_sub_attribute="custom:legacy_sub")
    result = audit.run_audit(regional, params, aws.RateLimiter(30))
    assert len(result.users) == 5 and len(result.memberships) == 5
    assert [(f.id, f.severity, f.detail) for f in result.findings if f.severity != "info"] == []
    checks.gate(audit.gate_checks(result, params), "audit")


# --- the rate budget, measured at the server ------------------------------------------------------------------


@pytest.fixture
def budget_pool(local_aws: LocalAWS) -> Iterator[LegacyPool]:
    yield seed_legacy_pool(users=300, seed=5, region="ap-southeast-2")


def test_the_rate_budget_holds_at_the_server(
    local_aws: LocalAWS, budget_pool: LegacyPool, capsys: pytest.CaptureFixture[str]
) -> None:
    cognito = boto3.client("cognito-idp", region_name=budget_pool.region, endpoint_url=local_aws.endpoint_url)
    params = audit_params(budget_pool.pool_id, budget_pool.migration_client_id, region=budget_pool.region)
    params = dataclasses.replace(params, list_rate_limit=5.0)
    limiter = aws.RateLimiter(params.list_rate_limit)
    assert local_aws.requests is not None
    with local_aws.requests.record() as log:
        audit.run_audit(cognito, params, limiter)
    times = sorted(t for t, action in log if action in ("ListUsers", "ListUsersInGroup"))
    assert len(times) >= 15, "the pool must be large enough for the budget to bite"
    most_in_a_second = max(sum(1 for t in times[i:] if t < start + 1.0) for i, start in enumerate(times))
    assert most_in_a_second <= limiter.rate + limiter.capacity
    assert times[-1] - times[0] >= (len(times) - limiter.capacity) / limiter.rate - 0.05
    progress = capsys.readouterr().err
    assert "user/s" in progress and "budget 5 pages/s = 300 users/s max" in progress
