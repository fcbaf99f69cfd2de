"""Diagnostics jobs for smoke tests, benchmarks and operators.

- `diagnostics.noop`: does nothing, returns `{"ok": true}`.
- `diagnostics.sleep` `{"seconds": n}`: sleeps, reporting progress each second (cancellable).
  `{"blocking": true}` sleeps in one C call instead, ignoring soft limits and cancels (tests the hard
  limit); `{"allocate_mb": n}` keeps n MiB allocated for the process's lifetime (tests the memory cap).
- `diagnostics.fail` `{"kind": "transient" | "permanent"}`: raises that kind of error.
"""

from __future__ import annotations

import time
from typing import Literal

import pydantic

from workers.catalogue import job
from workers.context import current_job
from workers.errors import PermanentError, TransientError

# Memory held on purpose by `allocate_mb` (only a test of the memory cap asks for it).
_ballast: list[bytearray] = []


class NoopParams(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")


class SleepParams(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    seconds: float = pydantic.Field(ge=0, le=86_400)
    blocking: bool = False
    allocate_mb: int = pydantic.Field(default=0, ge=0, le=4096)


class FailParams(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    kind: Literal["transient", "permanent"]
    message: str = pydantic.Field(default="diagnostics.fail was asked to fail", max_length=500)


@job("diagnostics.noop", queue="interactive", params=NoopParams, max_retries=0)
def noop() -> dict[str, bool]:
    return {"ok": True}


@job(
    "diagnostics.sleep",
    queue="default",
    params=SleepParams,
    max_retries=1,
    min_backoff=1,
    max_backoff=5,
    time_limit=3600,
    hard_time_limit=3660,
)
def sleep(*, seconds: float, blocking: bool = False, allocate_mb: int = 0) -> dict[str, float]:
    if allocate_mb:
        _ballast.append(bytearray(allocate_mb * 1024 * 1024))
    ctx = current_job()
    started = time.monotonic()
    if blocking:
        time.sleep(seconds)
    else:
        whole = int(seconds)
        ctx.progress(0, whole or 1, "sleeping")
        for second in range(1, whole + 1):
            time.sleep(1)
            ctx.progress(second, whole, f"slept {second} of {whole} s")
        time.sleep(seconds - whole)
    return {"slept": round(time.monotonic() - started, 3)}


@job("diagnostics.fail", queue="default", params=FailParams, max_retries=3, min_backoff=0.2, max_backoff=2)
def fail(*, kind: str, message: str = "") -> None:
    if kind == "transient":
        raise TransientError(message)
    raise PermanentError(message)
