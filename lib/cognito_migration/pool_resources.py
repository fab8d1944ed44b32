"""What lives in a user pool besides its settings: app clients, groups, the domain, resource servers and
identity providers.

For each kind, ``*_items`` compare what the old pool has (so what the new pool should get) with what the new
pool has, and return plan rows: ``create``; ``exists`` (already right, left alone); ``drift`` (exists but
differs from the plan: shown, never overwritten); ``manual`` (the operator's part, with the reason).
``create`` writes one 'create' row.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import scan
from .aws import absent_as_none
from .pool_settings import CREATE, DRIFT, EXISTS, MANUAL, Item, PoolError, differences, input_members

CLIENT, GROUP, DOMAIN = "app client", "group", "domain"
RESOURCE_SERVER, PROVIDER = "resource server", "identity provider"

MIGRATION_FLOWS = ("ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH")
# What a client allows when it lists no flows, and the pre-"ALLOW_" names Cognito still returns for old clients
# (which also allowed SRP and refresh tokens implicitly).
DEFAULT_FLOWS = ("ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_CUSTOM_AUTH")
LEGACY_FLOWS = {
    "ADMIN_NO_SRP_AUTH": "ALLOW_ADMIN_USER_PASSWORD_AUTH",
    "USER_PASSWORD_AUTH": "ALLOW_USER_PASSWORD_AUTH",
    "CUSTOM_AUTH_FLOW_ONLY": "ALLOW_CUSTOM_AUTH",
}
GROUP_KEYS = ("GroupName", "Description", "Precedence", "RoleArn")
# ProviderDetails a CreateIdentityProvider accepts, by type; the rest of DescribeIdentityProvider's answer
# is computed by Cognito. Secrets are never copied: they are not readable in AWS, the operator supplies them.
PROVIDER_DETAILS = {
    "Google": ("client_id", "authorize_scopes"),
    "Facebook": ("client_id", "authorize_scopes", "api_version"),
    "LoginWithAmazon": ("client_id", "authorize_scopes"),
    "SignInWithApple": ("client_id", "team_id", "key_id", "authorize_scopes"),
    "OIDC": (
        "client_id",
        "attributes_request_method",
        "oidc_issuer",
        "authorize_scopes",
        "authorize_url",
        "token_url",
        "attributes_url",
        "jwks_uri",
    ),
    "SAML": ("MetadataURL", "MetadataFile", "IDPSignout", "EncryptedResponses", "RequestSigningAlgorithm", "IDPInit"),
}
PROVIDER_SECRETS = {
    "Google": ("client_secret",),
    "Facebook": ("client_secret",),
    "LoginWithAmazon": ("client_secret",),
    "SignInWithApple": ("private_key",),
    "OIDC": ("client_secret",),
}
SECRET_KEYS = {key for keys in PROVIDER_SECRETS.values() for key in keys}
SECRET_VARIABLE_PREFIX = "COGNITO_MIGRATION_IDP_"


@dataclass
class Parts:
    """What a pool holds besides its settings; identity providers are kept without their secrets."""

    clients: list[dict[str, Any]]
    groups: list[dict[str, Any]]
    resource_servers: list[dict[str, Any]]
    providers: list[dict[str, Any]]
    domain: dict[str, Any]


def read_parts(cognito: Any, pool: Mapping[str, Any]) -> Parts:
    pool_id = pool["Id"]
    providers = [
        cognito.describe_identity_provider(UserPoolId=pool_id, ProviderName=p["ProviderName"])["IdentityProvider"]
        for p in scan.list_identity_providers(cognito, pool_id)
    ]
    for provider in providers:
        details = provider.get("ProviderDetails") or {}
        provider["ProviderDetails"] = {k: v for k, v in details.items() if k not in SECRET_KEYS}
    domain: dict[str, Any] = {}
    if pool.get("Domain"):
        domain = cognito.describe_user_pool_domain(Domain=pool["Domain"]).get("DomainDescription") or {}
    return Parts(
        clients=scan.list_clients(cognito, pool_id),
        groups=scan.list_groups(cognito, pool_id),
        resource_servers=scan.list_resource_servers(cognito, pool_id),
        providers=providers,
        domain=domain,
    )


def no_parts() -> Parts:
    """What a pool that does not exist yet holds."""
    return Parts([], [], [], [], {})


# --- app clients ------------------------------------------------------------------------------------------


def auth_flows(old_client: Mapping[str, Any]) -> list[str]:
    """The old client's flows in today's names, plus the password flow the migration trigger needs."""
    listed = old_client.get("ExplicitAuthFlows") or []
    flows = {flow for flow in listed if flow.startswith("ALLOW_")}
    legacy = [flow for flow in listed if flow in LEGACY_FLOWS]
    if legacy:
        flows |= {LEGACY_FLOWS[flow] for flow in legacy} | {"ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"}
    if not listed:
        flows |= set(DEFAULT_FLOWS)
    return sorted(flows | set(MIGRATION_FLOWS))


def client_input(cognito: Any, old_client: Mapping[str, Any], providers: set[str] | None = None) -> dict[str, Any]:
    """CreateUserPoolClient's input (without UserPoolId) from an old client: the same settings, a new secret
    where it had one, the password flow, and only identity providers the new pool has (or gets)."""
    accepted = input_members(cognito, "CreateUserPoolClient") - {"ClientSecret", "UserPoolId"}
    wanted = {k: v for k, v in old_client.items() if k in accepted and v not in (None, [], {})}
    wanted["ExplicitAuthFlows"] = auth_flows(old_client)
    wanted["GenerateSecret"] = bool(old_client.get("ClientSecret"))
    if providers is not None and wanted.get("SupportedIdentityProviders"):
        wanted["SupportedIdentityProviders"] = [
            p for p in wanted["SupportedIdentityProviders"] if p == "COGNITO" or p in providers
        ]
    return wanted


def client_drift(cognito: Any, wanted: Mapping[str, Any], actual: Mapping[str, Any]) -> list[str]:
    keys = input_members(cognito, "UpdateUserPoolClient") - {"UserPoolId", "ClientId", "ClientName"}
    drift = differences(wanted, actual, keys)
    if wanted.get("GenerateSecret") != bool(actual.get("ClientSecret")):
        drift.append("client secret (fixed at creation)")
    return drift


def client_items(cognito: Any, old: list[dict[str, Any]], new: list[dict[str, Any]], providers: set[str]) -> list[Item]:
    """Clients match by name; where several share one, each takes an unmatched twin without drift if any."""
    items = []
    for name in sorted({c["ClientName"] for c in old}):
        remaining = [c for c in new if c["ClientName"] == name]
        for old_client in (c for c in old if c["ClientName"] == name):
            wanted = client_input(cognito, old_client, providers)
            match = next((c for c in remaining if not client_drift(cognito, wanted, c)), None)
            match = match or (remaining[0] if remaining else None)
            if match is not None:
                remaining.remove(match)
            items.append(_client_item(cognito, old_client, wanted, match))
    return items


def _client_item(
    cognito: Any, old_client: Mapping[str, Any], wanted: dict[str, Any], actual: Mapping[str, Any] | None
) -> Item:
    name = old_client["ClientName"]
    if actual is not None:
        drift = client_drift(cognito, wanted, actual)
        if drift:
            return Item(CLIENT, name, DRIFT, "differs: " + ", ".join(drift), wanted)
        return Item(CLIENT, name, EXISTS, f"{actual['ClientId']}; {reset_required_answer(actual)}", wanted)
    flows = ", ".join(wanted["ExplicitAuthFlows"])
    secret = "new secret" if wanted["GenerateSecret"] else "no secret"
    left_out = set(old_client.get("SupportedIdentityProviders") or []) - set(
        wanted.get("SupportedIdentityProviders") or []
    )
    note = f"; without provider(s) {', '.join(sorted(left_out))} until they exist" if left_out else ""
    return Item(CLIENT, name, CREATE, f"{secret}; flows {flows}{note}; {reset_required_answer(wanted)}", wanted)


def reset_required_answer(client: Mapping[str, Any]) -> str:
    """What the client's password sign-in answers a RESET_REQUIRED user (MFA users under mfa_policy
    reset_required, FORCE_CHANGE_PASSWORD users, imported stragglers), by its PreventUserExistenceErrors
    (developer guide, "Requiring imported users to reset their passwords")."""
    if client.get("PreventUserExistenceErrors") == "ENABLED":
        return (
            "PreventUserExistenceErrors ENABLED: a RESET_REQUIRED user's sign-in answers NotAuthorizedException, "
            "as a wrong password does: the app must offer forgot-password on NotAuthorizedException"
        )
    return (
        "PreventUserExistenceErrors LEGACY: a RESET_REQUIRED user's sign-in answers PasswordResetRequiredException: "
        "the app must send it to forgot-password"
    )


# --- groups, resource servers -----------------------------------------------------------------------------


def group_items(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[Item]:
    existing = {g["GroupName"]: g for g in new}
    items = []
    for group in old:
        wanted = {k: group[k] for k in GROUP_KEYS if group.get(k) not in (None, "")}
        detail = f"precedence {wanted.get('Precedence', '-')}; {wanted.get('Description', '')}".strip("; ")
        items.append(_compare(GROUP, group["GroupName"], wanted, existing.get(group["GroupName"]), GROUP_KEYS, detail))
    return items


def resource_server_items(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[Item]:
    existing = {s["Identifier"]: s for s in new}
    items = []
    for server in old:
        wanted = {k: server[k] for k in ("Identifier", "Name", "Scopes") if server.get(k)}
        scopes = ", ".join(s["ScopeName"] for s in server.get("Scopes") or [])
        detail = f"{server.get('Name', '')}; scopes {scopes or 'none'}"
        items.append(
            _compare(RESOURCE_SERVER, server["Identifier"], wanted, existing.get(server["Identifier"]), wanted, detail)
        )
    return items


def _compare(
    resource: str, name: str, wanted: dict[str, Any], actual: Mapping[str, Any] | None, keys: Any, detail: str
) -> Item:
    if actual is None:
        return Item(resource, name, CREATE, detail, wanted)
    drift = differences(wanted, actual, keys)
    return Item(resource, name, DRIFT if drift else EXISTS, "differs: " + ", ".join(drift) if drift else detail, wanted)


# --- identity providers -----------------------------------------------------------------------------------


def secret_variable(provider: str, key: str) -> str:
    """The environment variable an operator sets to hand a provider's secret to step 2 (out of band)."""
    return SECRET_VARIABLE_PREFIX + re.sub(r"[^A-Z0-9]+", "_", f"{provider}_{key}".upper())


def provider_items(
    old: list[dict[str, Any]], new: list[dict[str, Any]], environ: Mapping[str, str] | None = None
) -> list[Item]:
    environ = os.environ if environ is None else environ
    existing = {p["ProviderName"]: p for p in new}
    items = []
    for provider in old:
        name, kind = provider["ProviderName"], provider.get("ProviderType", "")
        if kind not in PROVIDER_DETAILS:
            items.append(Item(PROVIDER, name, MANUAL, f"type {kind}: this runbook cannot copy it; create it by hand"))
            continue
        details = {k: v for k, v in (provider.get("ProviderDetails") or {}).items() if k in PROVIDER_DETAILS[kind]}
        if "MetadataURL" in details:
            details.pop("MetadataFile", None)  # Cognito takes one or the other; the URL keeps itself current
        wanted = {
            "ProviderName": name,
            "ProviderType": kind,
            "ProviderDetails": details,
            **{k: provider[k] for k in ("AttributeMapping", "IdpIdentifiers") if provider.get(k)},
        }
        secrets = tuple((key, secret_variable(name, key)) for key in PROVIDER_SECRETS.get(kind, ()))
        items.append(_provider_item(name, kind, wanted, secrets, existing.get(name), environ))
    return items


def _provider_item(
    name: str,
    kind: str,
    wanted: dict[str, Any],
    secrets: tuple[tuple[str, str], ...],
    actual: Mapping[str, Any] | None,
    environ: Mapping[str, str],
) -> Item:
    if actual is not None:
        actual_view = {
            **actual,
            "ProviderDetails": {k: actual.get("ProviderDetails", {}).get(k) for k in wanted["ProviderDetails"]},
        }
        drift = differences(
            wanted, actual_view, ("ProviderType", "ProviderDetails", "AttributeMapping", "IdpIdentifiers")
        )
        return Item(
            PROVIDER, name, DRIFT if drift else EXISTS, "differs: " + ", ".join(drift) if drift else kind, wanted
        )
    missing = [variable for _, variable in secrets if not environ.get(variable)]
    if missing:
        return Item(
            PROVIDER,
            name,
            MANUAL,
            f"{kind}: its secret cannot be read back from the old pool; set {', '.join(missing)} in the environment "
            "of the run (never in the parameters) and re-run step 2, or create the provider by hand",
        )
    source = f"; secret from {', '.join(v for _, v in secrets)}" if secrets else ""
    return Item(PROVIDER, name, CREATE, f"{kind}{source}", wanted, secrets)


# --- domain -----------------------------------------------------------------------------------------------


def domain_items(
    cognito: Any,
    old_pool: Mapping[str, Any],
    old_domain: Mapping[str, Any],
    new_pool: Mapping[str, Any] | None,
    prefix: str | None,
) -> list[Item]:
    items = []
    if old_pool.get("CustomDomain"):
        items.append(
            Item(
                DOMAIN,
                old_pool["CustomDomain"],
                MANUAL,
                "custom domain: it needs its ACM certificate and a DNS change; move it by hand when apps switch",
            )
        )
    current = (new_pool or {}).get("Domain")
    if not prefix:
        if old_pool.get("Domain"):
            items.append(
                Item(
                    DOMAIN,
                    old_pool["Domain"],
                    MANUAL,
                    "the old pool has this prefix: set new_domain_prefix to give "
                    "the new pool one (prefixes are unique in a Region)",
                )
            )
        return items
    wanted = {
        "Domain": prefix,
        **({"ManagedLoginVersion": old_domain["ManagedLoginVersion"]} if old_domain.get("ManagedLoginVersion") else {}),
    }
    if current == prefix:
        items.append(Item(DOMAIN, prefix, EXISTS, "prefix", wanted))
    elif current:
        items.append(
            Item(
                DOMAIN,
                prefix,
                DRIFT,
                f"the new pool has the prefix {current}; delete it by hand or set new_domain_prefix: {current}",
                wanted,
            )
        )
    else:
        owner = _domain_owner(cognito, prefix)
        if owner:
            raise PoolError(f"new_domain_prefix: {prefix} belongs to pool {owner}; choose another prefix")
        items.append(Item(DOMAIN, prefix, CREATE, "prefix", wanted))
    return items


def _domain_owner(cognito: Any, prefix: str) -> str | None:
    found = absent_as_none(lambda: cognito.describe_user_pool_domain(Domain=prefix), "ResourceNotFoundException")
    return None if found is None else (found.get("DomainDescription") or {}).get("UserPoolId")


# --- writing ----------------------------------------------------------------------------------------------

CREATE_CALLS = {
    CLIENT: "create_user_pool_client",
    GROUP: "create_group",
    DOMAIN: "create_user_pool_domain",
    RESOURCE_SERVER: "create_resource_server",
    PROVIDER: "create_identity_provider",
}


def create(cognito: Any, item: Item, pool_id: str, environ: Mapping[str, str] | None = None) -> None:
    """Writes one 'create' row into the pool; a provider's secrets are read from the environment only now."""
    environ = os.environ if environ is None else environ
    wanted = dict(item.wanted)
    if item.secrets:
        missing = [variable for _, variable in item.secrets if not environ.get(variable)]
        if missing:
            raise PoolError(f"identity provider {item.name}: {', '.join(missing)} not set; set it and re-run step 2")
        secrets = {key: environ[variable] for key, variable in item.secrets}
        wanted["ProviderDetails"] = {**wanted["ProviderDetails"], **secrets}
    getattr(cognito, CREATE_CALLS[item.resource])(UserPoolId=pool_id, **wanted)
