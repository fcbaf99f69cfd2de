"""What every driver shares: the result line, percentiles and the enqueue→start latency loop.

Only the standard library and redis-py: the Celery driver imports this from its own venv.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from typing import Any

# The line prefix a driver prints its result behind (one JSON object); anything else it prints is log.
RESULT_PREFIX = "BENCH-RESULT "
# Redis list the raw Dramatiq and Celery `stamp` jobs push "<token> <time.time()>" onto when they start.
STAMPS_KEY = "bench:stamps"
# Seconds a driver waits for every job of one latency pass to have started.
START_DEADLINE = 120.0


def emit(result: dict[str, Any]) -> None:
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile (pct in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def summary_ms(latencies_s: list[float]) -> dict[str, Any]:
    ms = [value * 1000 for value in latencies_s]
    return {
        "n": len(ms),
        "p50": percentile(ms, 50),
        "p95": percentile(ms, 95),
        "p99": percentile(ms, 99),
        "max": max(ms) if ms else None,
    }


def measure_latency(
    send: Callable[[], str],
    started: Callable[[list[str]], dict[str, float]],
    *,
    count: int,
    gap: float,
) -> dict[str, Any]:
    """Send `count` jobs, `gap` seconds apart (0: back to back), and time each one's start.

    `send()` enqueues one job the system's normal way and returns its token; `started(tokens)` returns
    token → the start time the job recorded (time.time() in the worker: the same clock as here).
    With a gap, the pause comes before each job, so the first one also finds the worker idle.
    """
    sent: dict[str, float] = {}
    for _ in range(count):
        if gap:
            time.sleep(gap)
        before = time.time()
        token = send()
        sent[token] = before
    deadline = time.monotonic() + START_DEADLINE
    seen: dict[str, float] = {}
    while len(seen) < len(sent) and time.monotonic() < deadline:
        found = started([token for token in sent if token not in seen])
        seen.update((token, when) for token, when in found.items() if token in sent)
        if len(seen) < len(sent):
            time.sleep(0.05)
    missing = len(sent) - len(seen)
    if missing:
        print(f"{missing} of {len(sent)} jobs had not started after {START_DEADLINE:.0f} s", file=sys.stderr)
    result = summary_ms([seen[token] - sent[token] for token in seen])
    result["missing"] = missing
    return result


def stamps(client: Any) -> dict[str, float]:
    """Every start recorded on STAMPS_KEY so far (token → time)."""
    found = {}
    for raw in client.lrange(STAMPS_KEY, 0, -1):
        token, _, when = raw.decode().partition(" ")
        found[token] = float(when)
    return found


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


class Driver:
    """One system's enqueue calls and start records; `main()` is the drivers' command line.

    enqueue [--single N] [--bulk M] [--keep]    time N single enqueues, then one bulk call of M jobs
    latency --passes NAME:COUNT:GAP[,...] [--offset S]   one cold send (timed as "cold"), then the
                                                         latency passes, one after another
    """

    def single(self, count: int) -> dict[str, Any]:
        raise NotImplementedError

    def bulk(self, count: int) -> dict[str, Any]:
        raise NotImplementedError

    def send(self) -> str:
        raise NotImplementedError

    def started(self, tokens: list[str]) -> dict[str, float]:
        raise NotImplementedError

    def prepare_latency(self) -> None:
        """Clear earlier start records."""

    def cleanup(self) -> None:
        """After an enqueue command without --keep (the harness empties Redis next)."""

    def extra(self, command: str) -> dict[str, Any]:
        raise SystemExit(f"unknown command {command}")

    def main(self) -> None:
        import argparse

        parser = argparse.ArgumentParser()
        parser.add_argument("command")
        parser.add_argument("--single", type=int, default=0)
        parser.add_argument("--bulk", type=int, default=0)
        parser.add_argument("--keep", action="store_true", help="leave the jobs for the workers")
        parser.add_argument("--passes", default="", help="NAME:COUNT:GAP,... e.g. b2b:200:0,gap:50:0.1")
        parser.add_argument("--offset", type=float, default=0.0, help="seconds to wait before the first pass")
        args = parser.parse_args()
        result: dict[str, Any] = {}
        if args.command == "enqueue":
            if args.single:
                result["single"] = self.single(args.single)
            if args.bulk:
                result["bulk"] = self.bulk(args.bulk)
            if not args.keep:
                self.cleanup()
        elif args.command == "latency":
            self.prepare_latency()
            time.sleep(args.offset)
            # This process's first send opens its broker and database connections and prepares its
            # statements. It is timed on its own ("cold") and left out of the passes, which measure
            # a warm enqueuing process (a web process's state after its first request).
            result["cold"] = measure_latency(self.send, self.started, count=1, gap=0)
            for spec in args.passes.split(","):
                name, count, gap = spec.split(":")
                result[name] = measure_latency(self.send, self.started, count=int(count), gap=float(gap))
        else:
            result = self.extra(args.command)
        emit(result)
