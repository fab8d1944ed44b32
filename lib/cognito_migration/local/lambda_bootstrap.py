"""The process that hosts a deployed function's code, as Lambda's Python runtime does.

Run as a script by ``lambda_runtime.Worker``: ``python lambda_bootstrap.py CODE_DIR HANDLER``.
It imports the handler once (a cold start), then answers invocations one per line: a JSON request
``{"event": ..., "request_id": ..., "deadline_ms": ...}`` on stdin, a JSON answer ``{"result": ...}`` or
``{"errorType": ..., "errorMessage": ...}`` on the protocol channel. Everything the function prints or logs
goes to stderr, which the emulator stores as the function's CloudWatch log stream.

Only the standard library is imported here, so the function sees the same modules it would see in Lambda
(plus boto3, which the runtime ships).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import time
from typing import Any


class LambdaContext:
    """The attributes of Lambda's context object that handlers commonly read."""

    def __init__(self, request_id: str, deadline_ms: int) -> None:
        self.aws_request_id = request_id
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.invoked_function_arn = os.environ.get("LOCAL_FUNCTION_ARN", "")
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = os.environ.get("LOCAL_LOG_STREAM", "")
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def main() -> None:
    code_dir, handler_name = sys.argv[1], sys.argv[2]
    # The protocol channel is a private copy of stdout; the function's own prints go to stderr (its log).
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    # Lambda's Python runtime installs a root handler, so logging.info() reaches CloudWatch.
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    sys.path.insert(0, code_dir)

    module_name, _, function_name = handler_name.rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
    except Exception as exc:  # the import error is the function's error: report it, then stop
        _answer(protocol, {"errorType": "Runtime.ImportModuleError", "errorMessage": f"{handler_name}: {exc}"})
        return

    for line in sys.stdin:
        request = json.loads(line)
        context = LambdaContext(request["request_id"], request["deadline_ms"])
        try:
            answer: dict[str, Any] = {"result": handler(request["event"], context)}
        except Exception as exc:  # any error of the function is its answer to the caller
            answer = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
            print(f"[ERROR] {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        _answer(protocol, answer)


def _answer(protocol: Any, answer: dict[str, Any]) -> None:
    protocol.write(json.dumps(answer) + "\n")
    protocol.flush()


if __name__ == "__main__":
    main()
