"""Cognito's request-rate quotas per account and Region.

Source: the developer guide, "Quotas in Amazon Cognito" (docs.aws.amazon.com/cognito/latest/developerguide/
quotas.html; doc_source/limits.md in awsdocs/amazon-cognito-developer-guide), "Category operations": the
default requests per second of each category and the operations that spend it. Shared by every pool in the
account and Region, production traffic included.
"""

from __future__ import annotations

QUOTAS: dict[str, tuple[float, tuple[str, ...]]] = {
    "UserAuthentication": (
        120,
        ("InitiateAuth", "AdminInitiateAuth", "RespondToAuthChallenge", "AdminRespondToAuthChallenge"),
    ),
    # "Operations that create or confirm a native Amazon Cognito user": AdminConfirmSignUp is one of them.
    "UserCreation": (50, ("AdminCreateUser", "SignUp", "ConfirmSignUp", "AdminConfirmSignUp")),
    "UserAccountRecovery": (
        30,
        ("ForgotPassword", "ConfirmForgotPassword", "AdminSetUserPassword", "AdminResetUserPassword"),
    ),
    "UserRead": (120, ("AdminGetUser", "GetUser")),
    "UserUpdate": (
        25,
        (
            "AdminUpdateUserAttributes",
            "AdminDeleteUserAttributes",
            "AdminDeleteUser",
            "AdminDisableUser",
            "AdminEnableUser",
            "AdminSetUserMFAPreference",
            "AdminUserGlobalSignOut",
        ),
    ),
    "UserResourceRead": (50, ("AdminListGroupsForUser", "AdminListDevices", "AdminGetDevice")),
    # "Operations that update user resource information, such as group": group membership, devices.
    "UserResourceUpdate": (
        25,
        ("AdminAddUserToGroup", "AdminRemoveUserFromGroup", "AdminForgetDevice", "AdminUpdateDeviceStatus"),
    ),
    "UserList": (30, ("ListUsers", "ListUsersInGroup")),
    "UserPoolRead": (15, ("DescribeUserPool", "ListUserPools")),
    "UserPoolUpdate": (15, ("CreateUserPool", "UpdateUserPool", "DeleteUserPool")),
    "UserPoolResourceRead": (
        20,
        (
            "ListGroups",
            "GetGroup",
            "GetCSVHeader",
            "DescribeUserImportJob",
            "ListUserImportJobs",
            "ListIdentityProviders",
            "DescribeIdentityProvider",
            "ListResourceServers",
            "DescribeResourceServer",
            "DescribeUserPoolDomain",
            "GetUserPoolMfaConfig",
        ),
    ),
    "UserPoolResourceUpdate": (
        15,
        (
            "CreateGroup",
            "UpdateGroup",
            "DeleteGroup",
            "CreateUserImportJob",
            "StartUserImportJob",
            "StopUserImportJob",
            "CreateIdentityProvider",
            "CreateResourceServer",
            "CreateUserPoolDomain",
            "DeleteUserPoolDomain",
            "SetUserPoolMfaConfig",
        ),
    ),
    "UserPoolClientRead": (15, ("ListUserPoolClients", "DescribeUserPoolClient")),
    "UserPoolClientUpdate": (15, ("CreateUserPoolClient", "UpdateUserPoolClient", "DeleteUserPoolClient")),
}
# "Any individual operation in this category has a constraint that prevents the operation from being called
# at a rate higher than 5 RPS for a single user pool" (the categories marked * on the quotas page).
PER_POOL_OPERATION_RPS = 5.0
POOL_LIMITED = frozenset(
    {"UserPoolResourceRead", "UserPoolResourceUpdate", "UserPoolClientRead", "UserPoolClientUpdate"}
)
_CATEGORY_OF = {operation: category for category, (_, operations) in QUOTAS.items() for operation in operations}


def quota_category(operation: str) -> str | None:
    """The quota category an operation spends (None for operations outside the table)."""
    return _CATEGORY_OF.get(operation)


def ceiling(category: str) -> float:
    """The fastest one run may spend a category: its quota, and for a pool-limited category no more than one
    operation may go at against one pool (a run's calls of a category may all be one operation on one pool)."""
    quota = QUOTAS[category][0]
    return min(quota, PER_POOL_OPERATION_RPS) if category in POOL_LIMITED else quota
