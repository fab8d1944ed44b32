"""Cognito's request-rate quotas per account and Region (AWS-FACTS.md, developer guide "quotas")."""

from __future__ import annotations

# Cognito's request-rate quotas per account and Region (AWS-FACTS.md, developer guide "quotas"): requests/s
# and the operations that spend each. Shared by every pool in the Region, production traffic included.
QUOTAS: dict[str, tuple[float, tuple[str, ...]]] = {
    "UserAuthentication": (
        120,
        ("InitiateAuth", "AdminInitiateAuth", "RespondToAuthChallenge", "AdminRespondToAuthChallenge"),
    ),
    "UserCreation": (50, ("AdminCreateUser", "SignUp")),
    "UserAccountRecovery": (
        30,
        ("ForgotPassword", "ConfirmForgotPassword", "AdminSetUserPassword", "AdminResetUserPassword"),
    ),
    "UserRead": (120, ("AdminGetUser", "GetUser")),
    "UserUpdate": (
        25,
        (
            "AdminAddUserToGroup",
            "AdminRemoveUserFromGroup",
            "AdminUpdateUserAttributes",
            "AdminDeleteUserAttributes",
            "AdminDeleteUser",
            "AdminDisableUser",
            "AdminEnableUser",
            "AdminConfirmSignUp",
        ),
    ),
    "UserResourceRead": (50, ("AdminListGroupsForUser",)),
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
            "ListUserPoolClients",
            "DescribeUserPoolClient",
            "ListIdentityProviders",
            "ListResourceServers",
            "DescribeUserPoolDomain",
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
            "CreateUserPoolClient",
            "UpdateUserPoolClient",
            "CreateUserPoolDomain",
        ),
    ),
}
_CATEGORY_OF = {operation: category for category, (_, operations) in QUOTAS.items() for operation in operations}


def quota_category(operation: str) -> str | None:
    """The quota category an operation spends (None for operations outside the table)."""
    return _CATEGORY_OF.get(operation)
