"""Runs the deployed function's own zip, as Lambda would, in warm worker processes.

moto stores a function's code bytes and configuration but cannot run Python code without Docker. This
module extracts the zip moto holds, starts ``lambda_bootstrap.py`` on it in a subprocess with the function's
environment variables (plus ``AWS_ENDPOINT_URL`` pointing back at the local AWS), and keeps the process warm
between invocations, as a Lambda container is kept, so clients created at import time are reused. An
invocation that runs past its deadline kills its worker; the next one starts cold.

Events travel on the worker's stdin, never on its command line or environment, because a migration event
carries a plaintext password.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import selectors
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BOOTSTRAP = Path(__file__).with_name("lambda_bootstrap.py")
LogSink = Callable[["FunctionSpec", str, str], None]  # (function, log stream, line)


class FunctionError(Exception):
    """The function raised: ``error_type`` and ``message`` are what the function said."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


class FunctionTimeout(Exception):
    """The function did not answer before its deadline; its worker was killed."""


@dataclass(frozen=True)
class FunctionSpec:
    """What the runtime needs of a deployed function, read from moto's backend."""

    name: str
    arn: str
    region: str
    handler: str
    code_bytes: bytes
    environment: dict[str, str]
    memory_mb: int = 128
    timeout_s: float = 3.0  # the function's own Timeout: what its context counts down from

    @property
    def code_sha256(self) -> str:
        return hashlib.sha256(self.code_bytes).hexdigest()

    @property
    def config_key(self) -> str:
        """Workers are reused only for the same code and configuration, as Lambda reuses containers."""
        config = json.dumps([self.arn, self.handler, self.environment], sort_keys=True)
        return f"{self.code_sha256}:{hashlib.sha256(config.encode()).hexdigest()}"


@dataclass
class InvocationStats:
    """Counters the emulator keeps so tests and benchmarks can see cold starts and timings."""

    invocations: int = 0
    cold_starts: int = 0
    timeouts: int = 0
    errors: int = 0
    durations_ms: list[float] = field(default_factory=list)


class Worker:
    """One warm process hosting one function's code."""

    def __init__(
        self,
        spec: FunctionSpec,
        code_dir: Path,
        endpoint_url: str,
        log_sink: LogSink,
        credentials: Mapping[str, str],
    ) -> None:
        self.spec = spec
        self.log_stream = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            **credentials,  # as Lambda hands a function its role's credentials: here, the local AWS's own
            "AWS_REGION": spec.region,
            "AWS_DEFAULT_REGION": spec.region,
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "LOCAL_FUNCTION_ARN": spec.arn,
            "LOCAL_LOG_STREAM": self.log_stream,
            **spec.environment,
            # Set last: the function must call back into this local AWS whatever its configuration says.
            "AWS_ENDPOINT_URL": endpoint_url,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-u", str(BOOTSTRAP), str(code_dir), spec.handler],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self._buffer = b""
        self._log_thread = threading.Thread(target=self._forward_logs, args=(log_sink,), daemon=True)
        self._log_thread.start()

    def _forward_logs(self, log_sink: LogSink) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            log_sink(self.spec, self.log_stream, raw.decode("utf-8", "replace").rstrip("\n"))

    def invoke(self, event: dict[str, Any], deadline: float, context_deadline_ms: int) -> dict[str, Any]:
        """Answers `event`, killed at `deadline` (monotonic); the context counts down to `context_deadline_ms`."""
        assert self.process.stdin is not None and self.process.stdout is not None
        request = {"event": event, "request_id": str(uuid.uuid4()), "deadline_ms": context_deadline_ms}
        try:
            self.process.stdin.write((json.dumps(request) + "\n").encode())
            self.process.stdin.flush()
        except BrokenPipeError as exc:
            raise FunctionError("Runtime.ExitError", "the function's process exited") from exc
        line = self._read_line(deadline)
        return json.loads(line)

    def _read_line(self, deadline: float) -> bytes:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    self.kill()
                    raise FunctionTimeout()
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise FunctionError("Runtime.ExitError", "the function's process exited")
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.alive:
            self.process.kill()
        self.process.wait()


class LambdaRuntime:
    """Invokes functions from warm workers; thread-safe, one worker per concurrent invocation."""

    def __init__(
        self,
        endpoint_url: Callable[[], str],
        log_sink: LogSink | None = None,
        credentials: Mapping[str, str] | None = None,
    ) -> None:
        self._endpoint_url = endpoint_url
        self._credentials = dict(credentials or {})
        self._log_sink: LogSink = log_sink or (lambda spec, stream, line: None)
        self._lock = threading.Lock()
        self._idle: dict[str, list[Worker]] = {}
        self._code_dirs: dict[str, Path] = {}
        self._scratch = tempfile.TemporaryDirectory(prefix="local-lambda-")
        self.stats = InvocationStats()

    def invoke(self, spec: FunctionSpec, event: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Runs the function on ``event``; returns its result or raises FunctionError / FunctionTimeout. The
        caller's ``timeout_s`` and the function's own Timeout both count from now, a cold start included: the
        worker is killed at the sooner, and the context's remaining time is the function's, as in Lambda."""
        started = time.perf_counter()
        deadline = time.monotonic() + min(timeout_s, spec.timeout_s)
        context_deadline_ms = int((time.time() + spec.timeout_s) * 1000)
        worker = self._take_worker(spec)
        try:
            answer = worker.invoke(event, deadline, context_deadline_ms)
        except FunctionTimeout:
            self.stats.timeouts += 1
            raise
        except FunctionError:
            worker.kill()
            self.stats.errors += 1
            raise
        finally:
            self.stats.invocations += 1
            self.stats.durations_ms.append((time.perf_counter() - started) * 1000)
        if "errorType" in answer:
            self.stats.errors += 1
            if answer["errorType"].startswith("Runtime."):
                worker.kill()
            else:
                self._give_back(spec, worker)
            raise FunctionError(answer["errorType"], answer.get("errorMessage", ""))
        self._give_back(spec, worker)
        result: dict[str, Any] = answer["result"]
        return result

    def _take_worker(self, spec: FunctionSpec) -> Worker:
        with self._lock:
            idle = self._idle.setdefault(spec.config_key, [])
            while idle:
                worker = idle.pop()
                if worker.alive:
                    return worker
            code_dir = self._code_dir(spec)
        self.stats.cold_starts += 1
        return Worker(spec, code_dir, self._endpoint_url(), self._log_sink, self._credentials)

    def _give_back(self, spec: FunctionSpec, worker: Worker) -> None:
        with self._lock:
            self._idle.setdefault(spec.config_key, []).append(worker)

    def _code_dir(self, spec: FunctionSpec) -> Path:
        sha = spec.code_sha256
        if sha not in self._code_dirs:
            target = Path(self._scratch.name) / sha
            with zipfile.ZipFile(io.BytesIO(spec.code_bytes)) as archive:
                archive.extractall(target)
            self._code_dirs[sha] = target
        return self._code_dirs[sha]

    def close(self) -> None:
        with self._lock:
            workers = [worker for idle in self._idle.values() for worker in idle]
            self._idle.clear()
        for worker in workers:
            if worker.process.stdin:
                worker.process.stdin.close()
            worker.kill()
        self._scratch.cleanup()
