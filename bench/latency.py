"""Enqueue → start latency, idle CPU, due-time lateness and priority overtaking, on a private Redis.

    .venv/bin/python bench/latency.py [--broker greenroom|stock|both] [--idle-samples 25] [--cpu-seconds 30]

Starts its own redis-server on a free port (never the shared one) and one real worker process
(`dramatiq bench.latency -p 1 -t 8`, Dramatiq's default 1 s poll timeout) per broker, then prints:

- enqueue→start p50/p95/p99 (ms): back-to-back (the next message sent as soon as the previous one
  started), with 0.1 s gaps, and to an idle worker (2 s gaps);
- the worker's idle CPU % over `--cpu-seconds` (Dramatiq's main process + its worker child);
- lateness (ms) of delayed messages (50-500 ms delays) past their due time;
- a message of priority 0 enqueued right behind a backlog of 10,000 ordinary ones (sent with
  `enqueue_many`, whose rate is printed too) while the worker drains them: its position in start
  order and its wait.

"Start" is the moment the actor is entered in the worker (a plain actor: the ledger's claim, which
Greenroom's jobs add, is not included). `stock` is Dramatiq's own RedisBroker, for comparison.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import dramatiq

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

QUEUE = "interactive"
RESULTS = "bench-latency:started"  # the actor RPUSHes "<tag> <epoch start>" here
URL_ENV, KIND_ENV = "BENCH_LATENCY_URL", "BENCH_LATENCY_BROKER"
BACKLOG = 10_000


def make_broker(kind: str, url: str) -> dramatiq.Broker:
    if kind == "greenroom":
        from project.broker import GreenroomRedisBroker

        return GreenroomRedisBroker(url=url)
    from dramatiq.brokers.redis import RedisBroker

    return RedisBroker(url=url)


if os.environ.get(URL_ENV):  # imported by the worker process (or by the bench itself)
    _broker = make_broker(os.environ.get(KIND_ENV, "greenroom"), os.environ[URL_ENV])
    dramatiq.set_broker(_broker)

    @dramatiq.actor(actor_name="bench_started", queue_name=QUEUE, max_retries=0)
    def started(tag: str) -> None:
        """Record when this message started."""
        _broker.client.rpush(RESULTS, f"{tag} {time.time():.6f}")  # type: ignore[attr-defined]


def message(tag: str, priority: int | None = None) -> dramatiq.Message[None]:
    options = {} if priority is None else {"priority": priority}
    return dramatiq.Message(queue_name=QUEUE, actor_name="bench_started", args=(tag,), kwargs={}, options=options)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: list[float]) -> str:
    return (f"p50 {pct(values, 0.5):7.2f}  p95 {pct(values, 0.95):7.2f}  p99 {pct(values, 0.99):7.2f}  "
            f"max {max(values):7.2f}  (n={len(values)})")


class Bench:
    def __init__(self, kind: str, url: str) -> None:
        self.kind = kind
        self.broker = make_broker(kind, url)
        self.client = self.broker.client  # type: ignore[attr-defined]

    def wait_start(self, tag: str, timeout: float = 10) -> float:
        while True:
            item = self.client.blpop([RESULTS], timeout=timeout)
            if item is None:
                raise RuntimeError(f"{tag} did not start within {timeout} s")
            got, at = item[1].decode().split()
            if got == tag:
                return float(at)

    def latencies(self, count: int, gap: float) -> list[float]:
        values = []
        for _ in range(count):
            tag = uuid.uuid4().hex
            sent = time.time()
            self.broker.enqueue(message(tag))
            values.append((self.wait_start(tag) - sent) * 1000)
            time.sleep(gap)
        return values

    def lateness(self, count: int) -> list[float]:
        values = []
        for i in range(count):
            delay = 50 + (i * 37) % 451  # 50-500 ms, spread
            tag = uuid.uuid4().hex
            sent = time.time()
            self.broker.enqueue(message(tag), delay=delay)
            values.append((self.wait_start(tag) - sent - delay / 1000) * 1000)
            time.sleep(0.05)
        return values

    def overtake(self) -> tuple[float, int, float, float]:
        """Enqueue a backlog then one urgent message; (enqueue rate/s, position, wait ms, backlog drain s)."""
        backlog = [message(f"b{i}") for i in range(BACKLOG)]
        self.client.delete(RESULTS)
        began = time.time()
        enqueue_many = getattr(self.broker, "enqueue_many", None)
        if enqueue_many is not None:
            enqueue_many(backlog)
        else:
            for item in backlog:
                self.broker.enqueue(item)
        rate = BACKLOG / (time.time() - began)
        sent = time.time()
        self.broker.enqueue(message("urgent", priority=0))
        deadline = time.time() + 120
        while self.client.llen(RESULTS) < BACKLOG + 1 and time.time() < deadline:
            time.sleep(0.2)
        order = [raw.decode().split() for raw in self.client.lrange(RESULTS, 0, -1)]
        position = next(i for i, (tag, _) in enumerate(order) if tag == "urgent")
        wait = (float(order[position][1]) - sent) * 1000
        drain = float(order[-1][1]) - began
        self.client.delete(RESULTS)
        return rate, position + 1, wait, drain


def cpu_seconds(pid: int) -> float:
    import psutil

    process = psutil.Process(pid)
    total = 0.0
    for proc in [process, *process.children(recursive=True)]:
        times = proc.cpu_times()
        total += times.user + times.system
    return total


def run(kind: str, url: str, args: argparse.Namespace) -> None:
    env = {**os.environ, URL_ENV: url, KIND_ENV: kind, "PYTHONPATH": str(BASE_DIR)}
    argv = [sys.executable, "-m", "dramatiq", "bench.latency", "--processes", "1", "--threads", "8",
            "--queues", QUEUE, "--worker-shutdown-timeout", "5000"]
    worker = subprocess.Popen(argv, env=env, cwd=BASE_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    bench = Bench(kind, url)
    bench.client.flushdb()
    try:
        bench.latencies(5, 0.05)  # warm-up: the worker is up
        print(f"\n== {kind} broker (1 worker process x 8 threads, poll timeout 1 s) ==")
        print(f"enqueue->start ms, back-to-back : {summary(bench.latencies(args.samples, 0))}")
        print(f"enqueue->start ms, 0.1 s gaps   : {summary(bench.latencies(args.samples // 2, 0.1))}")
        print(f"enqueue->start ms, idle (2 s)   : {summary(bench.latencies(args.idle_samples, 2.0))}")
        print(f"delayed, ms past due time       : {summary(bench.lateness(args.delayed_samples))}")
        time.sleep(2)
        before, began = cpu_seconds(worker.pid), time.monotonic()
        time.sleep(args.cpu_seconds)
        used = cpu_seconds(worker.pid) - before
        print(f"idle CPU over {args.cpu_seconds:.0f} s            : {100 * used / (time.monotonic() - began):.2f} % "
              f"(main process + worker child)")
        rate, position, wait, drain = bench.overtake()
        print(f"priority 0 behind {BACKLOG:,} waiting : started {position:,}th of {BACKLOG + 1:,} "
              f"({BACKLOG + 1 - position:,} of the backlog started after it), "
              f"{wait:.1f} ms after its enqueue; backlog drained in {drain:.1f} s")
        print(f"enqueue of the backlog          : {rate:,.0f} messages/s "
              f"({'enqueue_many' if hasattr(bench.broker, 'enqueue_many') else 'enqueue loop'})")
    finally:
        os.killpg(worker.pid, 15)
        worker.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", choices=["greenroom", "stock", "both"], default="both")
    parser.add_argument("--samples", type=int, default=400, help="back-to-back samples (half as many with gaps)")
    parser.add_argument("--idle-samples", type=int, default=25)
    parser.add_argument("--delayed-samples", type=int, default=60)
    parser.add_argument("--cpu-seconds", type=float, default=30)
    parser.add_argument("--quick", action="store_true",
                        help="fewer samples (200 back-to-back, 10 idle, 30 delayed, 10 s of CPU): `make bench` uses it")
    args = parser.parse_args()
    if args.quick:
        args.samples, args.idle_samples, args.delayed_samples, args.cpu_seconds = 200, 10, 30, 10.0
    from tests.support.redis_server import RedisServer

    server = RedisServer().start()
    try:
        print(f"private redis-server on port {server.port}; machine: {os.cpu_count()} cores, "
              f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        for kind in (["greenroom", "stock"] if args.broker == "both" else [args.broker]):
            run(kind, server.url, args)
    finally:
        server.remove()


if __name__ == "__main__":
    main()
