"""CloudWatch log events written straight into moto's logs backend, as AWS services write their own logs:
a Lambda function's stderr and an import job's rows."""

from __future__ import annotations

import time

from moto.logs.models import logs_backends


def append(account_id: str, region: str, group: str, stream: str, message: str) -> None:
    """One event, now, at the end of ``stream``, creating the group and the stream first as AWS does.
    Not thread-safe on its own: callers serialise their writes (checking and creating are two steps)."""
    backend = logs_backends[account_id][region]
    if group not in backend.groups:
        backend.create_log_group(group, {})
    if stream not in backend.groups[group].streams:
        backend.create_log_stream(group, stream)
    backend.put_log_events(group, stream, [{"timestamp": int(time.time() * 1000), "message": message}])
