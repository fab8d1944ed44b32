"""The local AWS: moto's server on 127.0.0.1, real HTTP, with Cognito's Lambda triggers played for it.

    with LocalAWS() as aws:            # or LocalAWS(port=5000).start()
        os.environ["AWS_ENDPOINT_URL"] = aws.endpoint_url

Any process that sets ``AWS_ENDPOINT_URL`` (a notebook kernel, the deployed function itself) then talks to
it through boto3's standard configuration. moto's backends live in this process, which is what lets the
legacy-pool generator write them directly and the trigger emulation read a deployed function's code.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from . import cognito_patches, lambda_states, log_events, virtual
from .access import AccessGate, new_credentials
from .cognito_triggers import CognitoTriggerMiddleware
from .faults import FaultInjector
from .import_jobs import UPLOAD_PATH, ImportJobs, ImportJobsLayer
from .lambda_runtime import FunctionSpec, LambdaRuntime

FAULTS_VARIABLE = "LOCAL_AWS_FAULTS"


def faults_from_environment() -> list[dict[str, Any]]:
    """Fault rules a local AWS starts with: LOCAL_AWS_FAULTS, a JSON list of FaultRule fields, lets a runner
    started from a shell or a test meet faults from its first call."""
    raw = os.environ.get(FAULTS_VARIABLE, "").strip()
    if not raw:
        return []
    try:
        rules = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f'{FAULTS_VARIABLE}: not JSON ({exc}); e.g. \'[{{"operation": "ListUsers", "throttle": 0.2}}]\''
        ) from exc
    if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
        raise ValueError(f'{FAULTS_VARIABLE}: must be a JSON list of rules such as {{"operation": "ListUsers"}}')
    return rules


class RequestLog:
    """The outermost WSGI layer: while recording, keeps (time.monotonic(), action) for every request received,
    the action being X-Amz-Target's operation (e.g. ``ListUsers``). Tests measure request rates here, at the
    server, instead of trusting the client's pacing."""

    def __init__(self, app: Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]) -> None:
        self.app = app
        self.entries: list[tuple[float, str]] = []
        self.recording = False
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self.recording:
            action = environ.get("HTTP_X_AMZ_TARGET", "").rpartition(".")[2]
            with self._lock:
                self.entries.append((time.monotonic(), action))
        return self.app(environ, start_response)

    @contextmanager
    def record(self) -> Iterator[list[tuple[float, str]]]:
        """``with aws.requests.record() as log:`` ... ``log`` holds what arrived inside the block."""
        with self._lock:
            self.entries = []
        self.recording = True
        try:
            yield self.entries
        finally:
            self.recording = False


class QuietRequestHandler(MotoRequestHandler):
    """One line per request on stderr would drown the runbook's own output."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class LocalAWS:
    """moto's server plus Cognito trigger emulation, serving on ``host:port`` (port 0: any free port)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        account_id: str = DEFAULT_ACCOUNT_ID,
        lambda_settle_s: float | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.account_id = account_id
        # This run's credentials: the only access key the local AWS lets in (access.py says why).
        self.credentials = new_credentials()
        self.runtime = LambdaRuntime(lambda: self.endpoint_url, self._store_log_line, self.credentials)
        self.gate: AccessGate | None = None
        self.middleware: CognitoTriggerMiddleware | None = None
        self.import_jobs: ImportJobsLayer | None = None
        self.virtual_pools: virtual.VirtualPoolLayer | None = None  # pools of generated users (virtual.py)
        self.faults: FaultInjector | None = None  # faults on request (faults.py)
        self.requests: RequestLog | None = None  # the outermost layer: what arrived, when (RequestLog)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._log_lock = threading.Lock()
        # How long a new function stays Pending and an update InProgress (None: LOCAL_AWS_LAMBDA_SETTLE_S or 1 s)
        self.lambda_states = lambda_states.STATES
        if lambda_settle_s is not None:
            self.lambda_states.settle_s = lambda_settle_s

    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the local AWS is not started: call LocalAWS.start() first")
        return f"http://{self.host}:{self._server.server_port}"

    def start(self) -> LocalAWS:
        cognito_patches.apply()
        lambda_states.apply()
        self.middleware = CognitoTriggerMiddleware(
            DomainDispatcherApplication(create_backend_app), self.runtime, self.account_id
        )
        # moto lacks Cognito's CSV user import: import_jobs answers it and serves the upload URL
        self.import_jobs = ImportJobsLayer(self.middleware, ImportJobs(self.account_id))
        self.virtual_pools = virtual.VirtualPoolLayer(self.import_jobs, self.account_id)
        self.faults = FaultInjector(self.virtual_pools)
        for rule in faults_from_environment():
            self.faults.add(**rule)
        self.gate = AccessGate(self.faults, self.credentials["AWS_ACCESS_KEY_ID"], (UPLOAD_PATH,))
        self.requests = RequestLog(self.gate)
        self._server = make_server(
            self.host, self.port, self.requests, threaded=True, request_handler=QuietRequestHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-aws", daemon=True)
        self._thread.start()
        return self

    def add_virtual_pool(self, users: int, seed: int = 7, region: str = "us-east-1") -> str:
        """A read-only pool of ``users`` users generated on the fly, never stored (virtual.py); returns its id.
        ``virtual.truth(users, seed)`` says what reading it must find."""
        return virtual.add_virtual_pool(users, seed, region, self.account_id)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.runtime.close()
        self._server = None

    def __enter__(self) -> LocalAWS:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _store_log_line(self, spec: FunctionSpec, stream: str, line: str) -> None:
        """A function's stderr becomes its CloudWatch log stream, as in Lambda."""
        with self._log_lock:
            log_events.append(self.account_id, spec.region, f"/aws/lambda/{spec.name}", stream, line)
