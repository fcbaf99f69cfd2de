"""Raw Dramatiq's side of the comparison (run by run.py; commands in common.Driver)."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dramatiq
from common import STAMPS_KEY, Driver, stamps, timed
from dramatiq_app import broker, noop, stamp


class DramatiqDriver(Driver):
    def __init__(self) -> None:
        self.tokens = (str(n) for n in itertools.count())
        broker.client.ping()  # connect before any clock starts

    def single(self, count: int) -> dict[str, Any]:
        elapsed = timed(lambda: [noop.send() for _ in range(count)])
        return {"rate": count / elapsed, "elapsed": elapsed, "call": "actor.send() loop"}

    def bulk(self, count: int) -> dict[str, Any]:
        # Dramatiq's only public bulk call: group(...).run() sends each message in turn (no pipeline).
        elapsed = timed(lambda: dramatiq.group(noop.message() for _ in range(count)).run())
        return {"rate": count / elapsed, "elapsed": elapsed, "call": "dramatiq.group(...).run()"}

    def prepare_latency(self) -> None:
        broker.client.delete(STAMPS_KEY)

    def send(self) -> str:
        token = next(self.tokens)
        stamp.send(token)
        return token

    def started(self, tokens: list[str]) -> dict[str, float]:
        return stamps(broker.client)


if __name__ == "__main__":
    DramatiqDriver().main()
