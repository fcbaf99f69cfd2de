"""Helpers of the CLI tests: run `manage.py jobs`, make ledger rows, read and write the broker's keys."""

from __future__ import annotations

import io
import json
import time
import uuid
from typing import Any

import pytest
import redis
from django.core.management import CommandError, call_command
from django.utils import timezone

from workers.models import Job, JobStatus


def run(*args: str, stdin: str | None = None) -> tuple[str, str]:
    """Run `manage.py jobs <args>`; return its stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    extra: dict[str, Any] = {} if stdin is None else {"stdin": io.StringIO(stdin)}
    call_command("jobs", *args, stdout=out, stderr=err, **extra)
    return out.getvalue(), err.getvalue()


def refused(*args: str, stdin: str | None = None) -> str:
    """Run `manage.py jobs <args>`, expect it to fail; return the error message."""
    with pytest.raises(CommandError) as error:
        run(*args, stdin=stdin)
    return str(error.value)


def failed_job(*, task: str = "diagnostics.fail", params: dict[str, Any] | None = None, queue: str = "default",
               **fields: Any) -> Job:
    """A FAILED ledger row, as a worker leaves one after the job's last attempt."""
    values: dict[str, Any] = {
        "task": task, "queue": queue, "params": {"kind": "permanent"} if params is None else params,
        "status": JobStatus.FAILED, "attempts": 1, "error_class": "workers.errors.PermanentError",
        "error_message": "never", "error_traceback": "Traceback (most recent call last):\nPermanentError: never\n",
        "started_at": timezone.now(), "finished_at": timezone.now(),
    }
    values.update(fields)
    return Job.objects.create(**values)


def put_dead_letter(client: redis.Redis, *, message_id: str, actor: str, queue: str = "default",
                    args: list[Any] | None = None, kwargs: dict[str, Any] | None = None) -> str:
    """Write a dead letter the way Dramatiq's nack leaves one; return its Redis id."""
    redis_id = str(uuid.uuid4())
    now_ms = int(time.time() * 1000)
    message = {
        "queue_name": queue, "actor_name": actor, "args": args or [], "kwargs": kwargs or {},
        "options": {"redis_message_id": redis_id, "retries": 3, "traceback": "Traceback ...\nBoom\n"},
        "message_id": message_id, "message_timestamp": now_ms - 60_000,
    }
    client.zadd(f"dramatiq:{queue}.XQ", {redis_id: now_ms})
    client.hset(f"dramatiq:{queue}.XQ.msgs", redis_id, json.dumps(message))
    return redis_id


def waiting_ids(client: redis.Redis, queue: str = "default") -> list[str]:
    """Message ids (= job ids) waiting in `queue`, in order."""
    return [message["message_id"] for message in waiting_messages(client, queue)]


def waiting_messages(client: redis.Redis, queue: str = "default") -> list[dict[str, Any]]:
    """The messages waiting in `queue`, in order, as stored."""
    messages = []
    for redis_id in client.lrange(f"dramatiq:{queue}", 0, -1):
        raw = client.hget(f"dramatiq:{queue}.msgs", redis_id)
        assert raw is not None, f"message {redis_id!r} is listed but not stored"
        messages.append(json.loads(raw))
    return messages


def dead_count(client: redis.Redis, queue: str = "default") -> int:
    return int(client.zcard(f"dramatiq:{queue}.XQ")) + int(client.hlen(f"dramatiq:{queue}.XQ.msgs"))
