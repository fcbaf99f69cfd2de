"""Jobs that exist only for the test suite (imported by test workers and by tests/conftest.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pydantic

from workers.catalogue import job
from workers.context import current_job
from workers.errors import TransientError


class FileParams(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    path: str
    seconds: float = 0
    fail_times: int = 0


def _append(path: str, line: str) -> int:
    with Path(path).open("a") as fh:
        fh.write(line + "\n")
    return len(Path(path).read_text().splitlines())


@job("testing.record", queue="default", params=FileParams, max_retries=2, min_backoff=0.2, max_backoff=1)
def record(*, path: str, seconds: float = 0, fail_times: int = 0) -> dict[str, int]:
    """Append a line to `path` per run (so tests count runs), sleep, fail transiently `fail_times` times."""
    runs = _append(path, f"start {current_job().attempt}")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.1)
        current_job().progress(int(seconds - (deadline - time.monotonic())), int(seconds) or 1, "working")
    if runs <= fail_times:
        raise TransientError(f"failing on purpose, run {runs}")
    _append(path, "done")
    return {"runs": runs}


class AllocateParams(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    path: str
    mb: int = pydantic.Field(ge=1, le=1024)


# Memory held on purpose by `testing.allocate` for the rest of the worker process's life.
_ballast: list[bytes] = []


@job("testing.allocate", queue="batch", params=AllocateParams, max_retries=0)
def allocate(*, path: str, mb: int) -> dict[str, int]:
    """Keep `mb` MiB allocated (and touched, so it is resident) in this worker process; record the run."""
    _append(path, f"start {current_job().attempt}")
    _ballast.append(b"x" * (mb * 1024 * 1024))
    _append(path, "done")
    return {"mb": mb}


class StallParams(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    path: str
    seconds: float
    fail: bool = False


@job("testing.stall", queue="default", params=StallParams, max_retries=2, min_backoff=0.2, max_backoff=1)
def stall(*, path: str, seconds: float, fail: bool = False) -> dict[str, str]:
    """Sleep without a progress call (as a frozen process would), then succeed or fail transiently."""
    _append(path, f"start {current_job().attempt}")
    time.sleep(seconds)
    _append(path, "end")
    if fail:
        raise TransientError("failing after a stall, on purpose")
    return {"ended": "ok"}


@job("testing.soft_limit", queue="default", params=FileParams, max_retries=0, time_limit=1, hard_time_limit=30)
def soft_limit(*, path: str, seconds: float = 0, fail_times: int = 0) -> None:
    """Busy Python loop past its 1 s soft limit; its `finally` records that it could clean up."""
    try:
        while True:
            sum(range(1000))
    finally:
        _append(path, "cleaned up")


@job("testing.hard_limit", queue="default", params=FileParams, max_retries=0, time_limit=1, hard_time_limit=2)
def hard_limit(*, path: str, seconds: float = 0, fail_times: int = 0) -> None:
    """Blocks in one C call (time.sleep) that no soft limit can interrupt."""
    _append(path, "started")
    time.sleep(seconds or 60)
    _append(path, "finished")  # never reached when the hard limit works
