"""Lambda's function states, which moto skips (it always answers State Active, LastUpdateStatus Successful).

As the developer guide's "Lambda function states" page describes them: after CreateFunction a function is
``State: Pending`` for a while, and Invoke, UpdateFunctionCode, UpdateFunctionConfiguration and PublishVersion
fail; after UpdateFunctionCode or UpdateFunctionConfiguration it is ``LastUpdateStatus: InProgress`` (State stays
Active) and the same updates fail, while invocations run the previous code and configuration. The refusal is a
409 ResourceConflictException; its wording is the one clients report (aws-amplify/amplify-backend#2510,
lumigo-io/SAR-measure-cold-start#16 for an update; remotion-dev/remotion#1186 for a Pending function).

How long a transition lasts is this AWS's choice: ``LOCAL_AWS_LAMBDA_SETTLE_S`` seconds (default 1, so the demo
stays fast; AWS takes from a few seconds to minutes), or ``STATES.settle_s`` in the process.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moto.awslambda import models
from moto.awslambda.exceptions import LambdaClientError

SETTLE_VARIABLE = "LOCAL_AWS_LAMBDA_SETTLE_S"
DEFAULT_SETTLE_S = 1.0
PENDING, IN_PROGRESS = "Pending", "InProgress"
_applied = False
_lock = threading.Lock()


class ResourceConflictException(LambdaClientError):
    code = 409

    def __init__(self, message: str) -> None:
        super().__init__("ResourceConflictException", message)


@dataclass(frozen=True)
class Snapshot:
    """What a function ran before an update: invocations keep running it until the update completes."""

    handler: str
    code_bytes: bytes
    environment: dict[str, str]
    memory_mb: int


@dataclass(frozen=True)
class Transition:
    status: str  # PENDING after a create, IN_PROGRESS after an update
    until: float
    previous: Snapshot | None = None


def settle_from_environment() -> float:
    raw = os.environ.get(SETTLE_VARIABLE, "").strip()
    try:
        return float(raw) if raw else DEFAULT_SETTLE_S
    except ValueError as exc:
        raise ValueError(f"{SETTLE_VARIABLE}: seconds as a number, e.g. 1.5 (got {raw!r})") from exc


class FunctionStates:
    """Each function's transition under way, by function ARN; a transition ends by itself after ``settle_s``."""

    def __init__(self, settle_s: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.settle_s = settle_from_environment() if settle_s is None else settle_s
        self._clock = clock
        self._transitions: dict[str, Transition] = {}
        self._lock = threading.Lock()

    def begin(self, arn: str, status: str, previous: Snapshot | None = None) -> None:
        if self.settle_s > 0:
            with self._lock:
                self._transitions[arn] = Transition(status, self._clock() + self.settle_s, previous)

    def current(self, arn: str) -> Transition | None:
        """The transition under way, or None once the function is Active and its last update Successful."""
        with self._lock:
            transition = self._transitions.get(arn)
            if transition is not None and self._clock() >= transition.until:
                del self._transitions[arn]
                return None
            return transition

    def refuse_change(self, arn: str) -> None:
        """Raises what Lambda answers to an update (or an invocation, when Pending) during a transition."""
        transition = self.current(arn)
        if transition is None:
            return
        if transition.status == PENDING:
            raise ResourceConflictException(
                "The operation cannot be performed at this time. The function is currently in the following "
                "state: Pending"
            )
        raise ResourceConflictException(
            f"The operation cannot be performed at this time. An update is in progress for resource: {arn}"
        )


STATES = FunctionStates()  # moto's backends are process-wide, and so are their functions' states


def snapshot(function: Any) -> Snapshot:
    return Snapshot(
        handler=function.handler,
        code_bytes=function.code_bytes,
        environment=dict(function.environment_vars or {}),
        memory_mb=int(function.memory_size or 128),
    )


def apply() -> None:
    """Patches moto's Lambda in this process; safe to call more than once."""
    global _applied
    with _lock:
        if _applied:
            return
        _patch_create()
        for method in ("update_function_code", "update_function_configuration"):
            _patch_update(method)
        _patch_refused_while_pending("publish_version")
        _patch_refused_while_pending("invoke")
        _patch_configuration()
        _applied = True


def _patch_create() -> None:
    original = models.LambdaBackend.create_function

    def create_function(self: models.LambdaBackend, spec: dict[str, Any]) -> Any:
        function = original(self, spec)
        STATES.begin(function.function_arn, PENDING)
        return function

    models.LambdaBackend.create_function = create_function


def _patch_update(method: str) -> None:
    original = getattr(models.LambdaBackend, method)

    def update(self: models.LambdaBackend, function_name: str, qualifier: str, body: dict[str, Any]) -> Any:
        function = self.get_function(function_name, qualifier)
        STATES.refuse_change(function.function_arn)
        previous = snapshot(function)
        answer = original(self, function_name, qualifier, body)
        STATES.begin(function.function_arn, IN_PROGRESS, previous)
        if isinstance(answer, dict):  # the update's own answer already says InProgress, as Lambda's does
            answer = function.get_configuration()
        return answer

    setattr(models.LambdaBackend, method, update)


def _patch_refused_while_pending(method: str) -> None:
    """PublishVersion fails in either transition; Invoke only while Pending (an update runs the old code)."""
    original = getattr(models.LambdaBackend, method)

    def refused(self: models.LambdaBackend, function_name: str, *args: Any, **kwargs: Any) -> Any:
        arn = self.get_function(function_name).function_arn
        transition = STATES.current(arn)
        if transition is not None and (method != "invoke" or transition.status == PENDING):
            STATES.refuse_change(arn)
        return original(self, function_name, *args, **kwargs)

    setattr(models.LambdaBackend, method, refused)


def _patch_configuration() -> None:
    original = models.LambdaFunction.get_configuration

    def get_configuration(self: models.LambdaFunction, on_create: bool = False) -> dict[str, Any]:
        config: dict[str, Any] = original(self, on_create)
        transition = STATES.current(self.function_arn)
        if transition is None:
            return config
        if transition.status == PENDING:
            config.update(State=PENDING, StateReason="The function is being created.", StateReasonCode="Creating")
        else:
            config["LastUpdateStatus"] = IN_PROGRESS
        return config

    models.LambdaFunction.get_configuration = get_configuration
