"""Raw Dramatiq 2.2.1: stock RedisBroker and middleware, no ledger. Workers import this module.

    BENCH_REDIS_URL=redis://127.0.0.1:<port>/<db> python -m dramatiq --path bench/compare dramatiq_app \
        --processes 2 --threads 8 --queues bench
"""

from __future__ import annotations

import os
import time

import dramatiq
from common import STAMPS_KEY
from dramatiq.brokers.redis import RedisBroker

QUEUE = "bench"

broker = RedisBroker(url=os.environ["BENCH_REDIS_URL"])
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=QUEUE)
def noop() -> None:
    """The trivial job the drain and enqueue figures are about."""


@dramatiq.actor(queue_name=QUEUE)
def stamp(token: str) -> None:
    """Record when this job started (enqueue→start latency)."""
    started = time.time()
    broker.client.rpush(STAMPS_KEY, f"{token} {started}")
