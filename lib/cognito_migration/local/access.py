"""Who may call the local AWS: only processes holding this run's credentials.

The local AWS listens on 127.0.0.1, where every user of the machine can reach it, and moto accepts any
access key. Left so, another local user could replace the trigger's code (UpdateFunctionCode) and the next
sign-in would run it with the typed password in hand. So each local AWS makes random credentials
(``new_credentials``), hands them to the processes it serves (the runner and its kernels, the deployed
function's workers; ``serve`` prints them for the operator's shell), and ``AccessGate`` refuses every request
signed with another access key, as AWS answers an unknown key. Let through without a key only what AWS itself
serves unsigned: Cognito's public operations (InitiateAuth, SignUp, ForgotPassword ...: their botocore model
says ``authtype: none``) and an import job's pre-signed upload URL, which carries its own signature.

The gate compares the access key id, not the SigV4 signature (moto checks neither): the id is 64 random bits
that only crosses loopback, which another user cannot read without root, and root can read the credentials
anyway. Keys the local STS issued (AssumeRole for an old pool in another account) are its own and let in.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any
from urllib.parse import parse_qs

import botocore.session
from moto.sts.models import sts_backends

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
KEY_HEADER = "X-Local-Access-Key"  # the local AWS's own control paths (faults) take the key in this header
_CREDENTIAL = re.compile(r"Credential=([^/\s,]+)/")


def new_credentials() -> dict[str, str]:
    """Random credentials for one local AWS, in the environment variables boto3 reads."""
    return {
        "AWS_ACCESS_KEY_ID": "LKIA" + secrets.token_hex(8).upper(),
        "AWS_SECRET_ACCESS_KEY": secrets.token_urlsafe(30),
        "AWS_SESSION_TOKEN": secrets.token_urlsafe(30),
    }


@cache
def unsigned_operations() -> frozenset[str]:
    """Cognito's operations AWS serves without credentials (a client's own sign-in, sign-up, reset)."""
    model = botocore.session.get_session().get_service_model("cognito-idp")
    return frozenset(o for o in model.operation_names if model.operation_model(o).auth_type == "none")


def access_key_of(environ: dict[str, Any]) -> str | None:
    """The access key id a request is signed with: its Authorization header, or a pre-signed query."""
    found = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    if found:
        return found.group(1)
    credential = parse_qs(environ.get("QUERY_STRING", "")).get("X-Amz-Credential", [""])[0]
    return credential.split("/", 1)[0] or environ.get("HTTP_" + KEY_HEADER.upper().replace("-", "_")) or None


class AccessGate:
    """The outermost WSGI layer: a request gets in with this run's access key (or a key this local STS issued),
    unsigned only where AWS serves it unsigned (``open_paths``: paths that carry their own signature)."""

    def __init__(self, app: WsgiApp, access_key_id: str, open_paths: tuple[str, ...]) -> None:
        self.app = app
        self.access_key_id = access_key_id
        self.open_paths = open_paths
        self.refused = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith(self.open_paths):
            return self.app(environ, start_response)
        key = access_key_of(environ)
        if key is None and _operation(environ) in unsigned_operations():
            return self.app(environ, start_response)
        if key is not None and (key == self.access_key_id or self._issued_here(key)):
            return self.app(environ, start_response)
        self.refused += 1
        return _refuse(environ, start_response, missing=key is None)

    def _issued_here(self, key: str) -> bool:
        """A key this local STS issued, in any account (an old pool in another account is read through a role
        assumed there)."""
        return any(
            role.access_key_id == key
            for account in list(sts_backends.keys())
            for role in sts_backends[account]["global"].assumed_roles
        )


def _operation(environ: dict[str, Any]) -> str:
    return str(environ.get("HTTP_X_AMZ_TARGET", "")).rpartition(".")[2]


def _refuse(environ: dict[str, Any], start_response: Callable[..., Any], missing: bool) -> list[bytes]:
    """As AWS answers an unknown or missing key: JSON for the JSON protocols (Cognito, Lambda, DynamoDB,
    Logs), XML for the query ones (IAM, STS)."""
    code = "MissingAuthenticationTokenException" if missing else "UnrecognizedClientException"
    message = "Missing Authentication Token" if missing else "The security token included in the request is invalid."
    if not environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        body = json.dumps({"__type": code, "message": message}).encode()
        start_response("403 Forbidden", [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", code)])
        return [body]
    xml_code = "MissingAuthenticationToken" if missing else "InvalidClientTokenId"
    body = (
        f"<ErrorResponse><Error><Type>Sender</Type><Code>{xml_code}</Code><Message>{message}</Message></Error>"
        "<RequestId>local</RequestId></ErrorResponse>"
    ).encode()
    start_response("403 Forbidden", [("Content-Type", "text/xml")])
    return [body]
