"""Celery's side of the comparison (run by run.py with var/bench-venv's python; commands in common.Driver)."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from celery import group
from celery_app import _stamps, noop, stamp
from common import STAMPS_KEY, Driver, stamps, timed


class CeleryDriver(Driver):
    def __init__(self) -> None:
        self.tokens = (str(n) for n in itertools.count())
        self.warmed = False

    def warm(self) -> None:
        if not self.warmed:  # open the producer connection before the clock starts (one extra no-op)
            noop.delay()
            self.warmed = True

    def single(self, count: int) -> dict[str, Any]:
        self.warm()
        elapsed = timed(lambda: [noop.delay() for _ in range(count)])
        return {"rate": count / elapsed, "elapsed": elapsed, "call": "task.delay() loop"}

    def bulk(self, count: int) -> dict[str, Any]:
        self.warm()
        elapsed = timed(lambda: group(noop.s() for _ in range(count)).apply_async())
        return {"rate": count / elapsed, "elapsed": elapsed, "call": "group(...).apply_async()"}

    def prepare_latency(self) -> None:
        _stamps.delete(STAMPS_KEY)

    def send(self) -> str:
        token = next(self.tokens)
        stamp.delay(token)
        return token

    def started(self, tokens: list[str]) -> dict[str, float]:
        return stamps(_stamps)


if __name__ == "__main__":
    CeleryDriver().main()
